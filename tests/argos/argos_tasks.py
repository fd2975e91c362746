"""Run by the Argos venv's Python: the tasks Argos 0.10.3 itself makes of configuration files.

Each file is read by Argos's own ``read_yaml_config`` (its schema, its ``!include``)
and turned into tasks by its own ``update_from_config`` on an in-memory SQLite
database, so nothing of Argos's behaviour is re-implemented here. Prints one JSON
object: file → {"tasks": [...]} or {"error": "..."}.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

# Importing argos.server builds its app, which reads the file named here: Argos's own test
# configuration, which is valid.
os.environ.setdefault(
    "ARGOS_YAML_FILE", str(Path(__file__).parent / "corpus" / "argos-tests-config.yaml")
)

from argos.server import models, queries
from argos.server.settings import read_yaml_config
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

# One in-memory database for every file, emptied between them: SQLAlchemy then compiles each
# statement once, not once per file (hundreds of files in tests/test_argos_fields.py).
ENGINE = create_engine("sqlite://", poolclass=StaticPool)
models.Base.metadata.create_all(bind=ENGINE)


def tasks_of(path):
    config = read_yaml_config(path)
    with sessionmaker(bind=ENGINE)() as db:  # closed, hence rolled back, whatever happens
        for table in reversed(models.Base.metadata.sorted_tables):
            db.execute(table.delete())
        db.commit()
        # update_from_config truncates tasks_tmp with a statement chosen by the URL's scheme.
        config.general.db.url = "sqlite://"
        asyncio.run(queries.update_from_config(db, config))
        return _tasks(db)


def _tasks(db):
    return [
        {
            "url": t.url,
            "method": t.method,
            "request_data": t.request_data,
            "check": t.check,
            "expected": t.expected,
            "ip_version": t.ip_version,
            "frequency": t.frequency,
            "recheck_delay": t.recheck_delay,
            "retry_before_notification": t.retry_before_notification,
            "add_alerts_recipients": t.add_alerts_recipients,
            "overwrite_alerts_recipients": t.overwrite_alerts_recipients,
        }
        for t in db.query(models.Task).all()
    ]


def main():
    out = {}
    for path in sys.argv[1:]:
        try:
            out[path] = {"tasks": tasks_of(path)}
        # Whatever Argos raises reading the file stops it: durations_nlp's ScaleFormatError,
        # a TypeError or AttributeError from a validator given a number, as well as pydantic's.
        except Exception as exc:
            out[path] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
