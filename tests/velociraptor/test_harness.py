"""The harness's own recovery path, against the real server: a re-issued interrogation completes and is recorded.

Velociraptor can lose a client's first interrogation (see Velociraptor.wait_enrolled); the harness then collects
Generic.Client.Info again. This checks that such a collection finishes and becomes the client's last interrogation.
"""

from __future__ import annotations

import harness  # conftest puts this directory on sys.path, so this is the module its fixtures use
import pytest

pytestmark = pytest.mark.velociraptor


def test_reissued_interrogation_becomes_the_clients_last(velociraptor: harness.Velociraptor) -> None:
    flow_id = velociraptor.interrogate(velociraptor.client_id)
    assert flow_id.startswith("F."), flow_id

    def recorded() -> dict[str, object] | None:
        rows = velociraptor.query("SELECT os_info, last_interrogate_flow_id FROM clients(client_id=ClientId)",
                                  env={"ClientId": velociraptor.client_id}, timeout=30)
        return rows[0] if rows and rows[0].get("last_interrogate_flow_id") == flow_id else None

    row = harness.wait_for(recorded, 90, 1.0, f"interrogation {flow_id} to be recorded")
    assert row["os_info"]["hostname"] == velociraptor.hostname
