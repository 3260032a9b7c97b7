"""Every table of printsrv, in one metadata: import this module wherever it must be complete.

Each domain keeps its tables in its own `models.py`, all on the one declarative `Base` of
`printsrv.platform.models` (one metadata, one naming convention); the accounting tables are
`financial.schema`'s. Alembic's environment, the app and the tests import this module, so
every table is known and every relationship named by class resolves.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import financial.schema
from printsrv.accounts import models as accounts_models
from printsrv.agents import models as agents_models
from printsrv.documents import models as documents_models
from printsrv.jobs import models as jobs_models
from printsrv.operations import models as operations_models
from printsrv.people import models as people_models
from printsrv.platform.models import Base
from printsrv.printing import models as printing_models
from printsrv.release import models as release_models

__all__ = ["DOMAIN_MODELS", "every_metadata"]

DOMAIN_MODELS = (
    people_models,
    accounts_models,
    documents_models,
    printing_models,
    operations_models,
    jobs_models,
    agents_models,
    release_models,
)


def every_metadata() -> list[MetaData]:
    """printsrv's metadata (every domain's tables) and the financial core's, in that order."""
    return [Base.metadata, financial.schema.metadata]
