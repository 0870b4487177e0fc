"""Reports for auditors: the stack audit report (`mlmon report audit`, `GET /api/v1/reports/audit`).

audit_loader.py    reads the history with a handful of bulk queries (raw_values.py decodes)
audit_inputs.py    what it reads, as plain values
replay.py          a finding as it stood at a past moment, from its event log
finding_status.py  status, SLA due date and outcome, compliance
audit.py           the report document (pure)
render_json/csv/html.py, templates/   the formats; api.py, commands.py   the faces
"""

from __future__ import annotations
