"""Run by the Argos venv's Python: Argos 0.10.3's own agent works one list of tasks once.

Reads tasks shaped as Argos's ``GET /api/tasks`` answers them (JSON on stdin), lets
``ArgosAgent._get_and_complete_tasks`` run them as it runs a poll (its grouping, its
``http://`` twin for ``http-to-https``, its requests with its timeout, its check classes)
and prints the results it posts (a JSON list). Only the agent's link to its server is
replaced, by an in-memory one: the targets are asked over the network, as in production.
"""

import asyncio
import json
import sys

import httpx
from argos.agent import ArgosAgent


async def main():
    tasks = json.load(sys.stdin)
    posted = []

    def server(request):
        if request.url.path == "/api/tasks":
            return httpx.Response(200, json=tasks)
        posted.extend(json.loads(request.content))
        return httpx.Response(201, json={"result_ids": []})

    agent = ArgosAgent("http://argos", "token", len(tasks), 1, "", "oracle")
    # As ArgosAgent.run sets them up, but for the server's link.
    agent._http_client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    agent._http_client_v4 = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address="0.0.0.0")
    )
    agent._http_client_v6 = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address="::")
    )
    await agent._get_and_complete_tasks()
    json.dump(posted, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
