"""Compliance engine: versioned rules with evidence, static review of train_gpt.py, log/JSON
consistency, data and time rules from the logs, significance, and a leaderboard built from
records folders. The only rule engine: the CLI, the service's worker and ingest all use it.

Pure: no web or database imports. Public API:
    load_record(folder) -> Record
    check_record(folder_or_record, artifact=None, *, measured=None, current_best=None, config=None,
                 canonical_val_sha256=None, stages=None, track=None) -> Verdict
    final_verdict(results) -> "pass" | "fail" | "unverified"
    rank_entries(records) -> {track: [Entry, ...]}
    scan_code(source, filename="train_gpt.py") -> ScanReport
"""

from gepa.compliance.check import check_record
from gepa.compliance.engine import FAIL, PASS, SKIP, WARN, Evidence, RuleResult, Verdict, final_verdict
from gepa.compliance.policy import RULESET_VERSION
from gepa.compliance.ranking import Entry, rank_entries
from gepa.compliance.record import Record, load_record
from gepa.compliance.review import ScanReport, scan_code, scan_sources
from gepa.compliance.rules import RULE_IDS, RULES

__all__ = [
    "FAIL", "PASS", "SKIP", "WARN", "Entry", "Evidence", "RULESET_VERSION", "RULES", "RULE_IDS", "Record",
    "RuleResult", "ScanReport", "Verdict", "check_record", "final_verdict", "load_record", "rank_entries", "scan_code",
    "scan_sources",
]
