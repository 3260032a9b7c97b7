"""One job's work in a process of its own: `python -m printsrv.jobs.worker`.

The runner (`runner.py`) starts this for every job it claims and waits for it on a thread.
A job's work is mostly Python (a PDF laid out row by row): in the server's own process it
would hold the interpreter lock for half of the time the server needs it, however low its
thread's priority. In a process of its own, at a lower scheduling priority (nice 10), it
takes what the server leaves of a core. A crash of the work (a converter, a library) ends
this process, not the server.

The request comes as one JSON object on stdin: job type, argument, owner, work directory.
Progress goes to stdout as `progress N` lines; the last line is `result [files]` or
`error {"kind": ..., "message": ...}`. The environment names the installation as for any
command (PRINTSRV_HOME, PRINTSRV_DATABASE_URL, PRINTSRV_SECRET_KEY).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

NICENESS = 10


def _emit(kind: str, payload: Any) -> None:
    sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


def main() -> int:
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)
    from printsrv import tables  # noqa: F401 (every table mapped before the first query)
    from printsrv.errors import InvalidInput, NotFound, PrintsrvError
    from printsrv.jobs.service import Owner
    from printsrv.jobs.types import JOB_TYPES, JobContext, JobTimedOut
    from printsrv.operations.installation import open_installation

    request = json.loads(sys.stdin.read())
    installation = open_installation(create=False)
    shown = -1

    def report(percent: int) -> None:
        nonlocal shown
        if int(percent) != shown:
            shown = int(percent)
            sys.stdout.write(f"progress {shown}\n")
            sys.stdout.flush()

    try:
        kind = JOB_TYPES[request["job_type"]]
        context = JobContext(
            installation, Owner(*request["owner"]), Path(request["workdir"]), report
        )
        files = kind.run(context, request["argument"])
    except JobTimedOut as error:
        _emit("error", {"kind": "timeout", "message": error.message})
    except (InvalidInput, NotFound) as error:
        _emit("error", {"kind": "input", "message": error.message})
    except PrintsrvError as error:
        _emit("error", {"kind": "generation", "message": error.message})
    except Exception:
        traceback.print_exc()
        _emit(
            "error",
            {"kind": "unknown", "message": "The job failed; the server log has the details"},
        )
    else:
        _emit("result", [[f.name, f.media_type, str(f.path)] for f in files])
    finally:
        installation.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
