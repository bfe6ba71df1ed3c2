"""alert_conditions: keyed by (rule, node)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 11:00:00

The evaluator compares what holds with the conditions in SQL, one rule at a time: it looks a
(rule, node) up among the conditions for every pair that holds, and reads each rule's
conditions in a range. Keyed by (rule_id, node_id), a rule's conditions sit together (InnoDB
clusters rows by their primary key); `key`, the alert's open_key, stays unique.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_conditions") as batch:
        batch.drop_constraint("pk_alert_conditions", type_="primary")
        batch.create_primary_key("pk_alert_conditions", ["rule_id", "node_id"])
        batch.create_unique_constraint("uk_alert_conditions_key", ["key"])


def downgrade() -> None:
    with op.batch_alter_table("alert_conditions") as batch:
        batch.drop_constraint("uk_alert_conditions_key", type_="unique")
        batch.drop_constraint("pk_alert_conditions", type_="primary")
        batch.create_primary_key("pk_alert_conditions", ["key"])
