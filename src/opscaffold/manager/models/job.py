from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from opscaffold.manager.models.base import Base


class JobClaim(Base):
    """A tick of a background job, claimed by exactly one replica.

    The primary key (job, scheduled_at) is the fence: however many replicas race for a tick,
    one insert wins, and a replica whose lease ran out cannot act on a tick another re-claimed.
    """

    __tablename__ = "job_claims"
    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},)

    job: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    scheduled_at: Mapped[datetime] = mapped_column(sa.DateTime, primary_key=True)
    claimed_by: Mapped[str] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime] = mapped_column(sa.DateTime)
    lease_until: Mapped[datetime] = mapped_column(sa.DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)
