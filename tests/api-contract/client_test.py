"""Drives the API through a client generated from docs/openapi.json (openapi-python-client): create a session
asynchronously, poll its job until it succeeded, and find the session in the caller's list. Run by
scripts/check-api against the real stack; WGATE_BASE_URL and WGATE_TOKEN say where and as whom."""

import os
import sys
import time
import uuid

from wgate_client import AuthenticatedClient
from wgate_client.api.jobs import get_job
from wgate_client.api.sessions import session_create, sessions_get
from wgate_client.models import JobStatus, SessionCreate, SessionsGetRequest


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    client = AuthenticatedClient(base_url=os.environ["WGATE_BASE_URL"], token=os.environ["WGATE_TOKEN"], timeout=10.0)
    name = f"client test {uuid.uuid4().hex[:8]}"

    created = session_create.sync_detailed(
        client=client,
        body=SessionCreate(name=name),
        prefer="respond-async",
        idempotency_key=f"client-test-{uuid.uuid4()}",
    )
    if created.status_code != 202 or created.parsed is None:
        fail(f"session-create answered {created.status_code}: {created.content!r}")
    job_id = created.parsed.data.id
    print(f"created: job {job_id}, status {created.parsed.data.status.value}")

    deadline = time.monotonic() + 30
    while True:
        polled = get_job.sync_detailed(id=job_id, client=client)
        if polled.status_code != 200 or polled.parsed is None:
            fail(f"GET job answered {polled.status_code}: {polled.content!r}")
        job = polled.parsed.data
        if job.status == JobStatus.SUCCEEDED:
            break
        if job.status in (JobStatus.FAILED, JobStatus.DEAD):
            fail(f"the job ended {job.status.value}: {job.error}")
        if time.monotonic() > deadline:
            fail(f"the job was still {job.status.value} after 30 s")
        time.sleep(0.1)
    session = job.response
    if session is None or session.name != name:
        fail(f"the succeeded job carries no session named {name!r}: {session}")
    print(f"polled: job succeeded, session {session.unique_id} ({session.status}), qr_link {session.qr_link}")

    listed = sessions_get.sync_detailed(client=client, body=SessionsGetRequest())
    if listed.status_code != 200 or listed.parsed is None:
        fail(f"sessions-get answered {listed.status_code}: {listed.content!r}")
    ids = [s.unique_id for s in listed.parsed.data]
    if session.unique_id not in ids:
        fail(f"sessions-get does not list {session.unique_id}: {ids}")
    print(f"listed: {listed.parsed.elements} session(s), the new one among them")


if __name__ == "__main__":
    main()
