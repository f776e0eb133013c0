"""The audit log survives rotation: renamed or deleted, the file is reopened by the next line."""

from __future__ import annotations

import json

from granero.access.audit import AuditLog, AuditRecord


def record(principal: str) -> AuditRecord:
    return AuditRecord("GetOnlineFeatures", principal, "token", "read_online", "allowed",
                       feature_service="ranker", entities=3)


def test_lines_go_to_a_new_file_after_logrotate_renames_or_deletes_it(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write(record("a"))
    path.rename(tmp_path / "audit.jsonl.1")
    log.write(record("b"))
    path.unlink()
    log.write(record("c"))
    log.close()
    assert [json.loads(line)["principal"] for line in (tmp_path / "audit.jsonl.1").read_text().splitlines()] == ["a"]
    (line,) = path.read_text().splitlines()
    assert json.loads(line) | {"ts": 0} == {
        "ts": 0, "method": "GetOnlineFeatures", "principal": "c", "via": "token",
        "action": "read_online", "outcome": "allowed", "code": "OK", "feature_service": "ranker",
        "views": [], "entities": 3, "latency_ms": 0.0}
