import re
from datetime import UTC, datetime, timedelta

from app.services.health import record_heartbeat


async def test_liveness_needs_nothing(client):
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_fails_without_a_worker_heartbeat(client):
    response = await client.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["worker"]["ok"] is False


async def test_readiness_passes_with_a_fresh_heartbeat_and_fails_when_it_goes_stale(client, db):
    now = datetime.now(UTC)
    await record_heartbeat(db, worker_id="w1", hostname="h", pid=1, queue="dispatch", started_at=now, now=now)
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["live"] == {"ok": True, "detail": "listening for board events"}
    old = now - timedelta(minutes=5)
    await record_heartbeat(db, worker_id="w1", hostname="h", pid=1, queue="dispatch", started_at=old, now=old)
    response = await client.get("/health/ready")
    assert response.status_code == 503
    detail = response.json()["checks"]["worker"]["detail"]
    seconds = re.fullmatch(r"last heartbeat (\d+) s ago", detail)
    assert seconds and 300 <= int(seconds.group(1)) < 330, detail  # the wall clock moved on meanwhile


async def test_metrics_answer_the_server_itself_in_prometheus_form(app):
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app, base_url="https://testserver.local") as local:
        await local.get("/login")
        response = await local.get("/metrics")
    assert response.status_code == 200
    assert "dispatch_requests_total" in response.text


async def test_every_response_carries_the_security_headers(client):
    response = await client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
