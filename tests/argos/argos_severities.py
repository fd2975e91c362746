"""Run by the Argos venv's Python: give the tasks of an Argos database severities.

``argos_severities.py CONFIG SEVERITY...``: creates the database named in CONFIG
(SQLite), fills its tasks with Argos's own ``update_from_config`` and sets the
severities, one per task in id order, so that ``argos server nagios`` can be asked
about a known state; prints what Argos's ``/api/severities``, ``/api/stats`` and ``/api/app/…``
answer (the last given ``general.unauthenticated_access`` in CONFIG, else a 401).
"""

import asyncio
import json
import os
import sys

os.environ["ARGOS_YAML_FILE"] = sys.argv[1]

from argos.server import models, queries
from argos.server.main import get_application, setup_database
from argos.server.settings import read_yaml_config
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


def main():
    config = read_yaml_config(sys.argv[1])
    engine = create_engine(str(config.general.db.url))
    models.Base.metadata.create_all(bind=engine)
    db = sessionmaker(bind=engine)()
    asyncio.run(queries.update_from_config(db, config))
    tasks = db.query(models.Task).order_by(models.Task.id).all()
    for task, severity in zip(tasks, sys.argv[2:], strict=False):
        task.severity = severity
    db.commit()
    app = get_application()
    setup_database(app)
    client = TestClient(app)
    app = {p: client.get(f"/api/app/{p}").json() for p in ("", "version", "agents", "domains")}
    app["reschedule/all"] = client.post("/api/app/reschedule/all").json()
    json.dump(
        {
            "severities": client.get("/api/severities").json(),
            "stats": client.get("/api/stats").json(),
            "app": app,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
