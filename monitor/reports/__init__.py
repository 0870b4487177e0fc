"""Reports for auditors: the stack audit report (`mlmon report audit`, `GET /api/v1/reports/audit`).

`audit.py` turns loaded history into a report document (pure), `audit_loader.py` reads that
history with a handful of bulk queries, `render_json/csv/html.py` print the document.
"""

from __future__ import annotations
