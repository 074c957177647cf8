"""The verdict is checked against the evidence: what the model names and the evidence lacks is dropped and noted."""

from __future__ import annotations

from crew_fixtures import BYSTANDER, CULPRIT, make_alert, make_evidence, offline_report, verdict

from agents.crew.guard import UNVERIFIED_FILE, UNVERIFIED_SHA, check
from agents.crew.verdict import Verdict, apply_verdict
from agents.report import Usage


def test_short_shas_of_evidence_commits_resolve_to_the_full_sha() -> None:
    clean, notes = check(Verdict.model_validate(verdict()), make_evidence())
    assert [b.sha for b in clean.blamed_commits] == [CULPRIT]
    assert notes == []


def test_unknown_commit_file_metric_and_runbook_are_dropped_and_noted() -> None:
    doc = verdict(
        summary="Commit 9e8d7c6b5a broke config/payments.yaml while pod checkout-7f9c8d6b5 was fine.",
        blamed_commits=[{"sha": "9e8d7c6b5a", "likelihood": 0.9, "reason": "x"}, {"sha": BYSTANDER[:8], "likelihood": 0.4, "reason": "y"}],
        cited_files=["config/payments.yaml", "src/checkout/discounts.py"],
        cited_metrics=["cpu_seconds_total", "http_requests_errors_ratio"],
        actions=[{"title": "Run the wipe runbook", "detail": "", "kind": "mitigate", "runbook": "Wipe everything"}],
    )
    evidence = make_evidence()
    evidence.signatures[0].sample += " pod=checkout-7f9c8d6b5"
    clean, notes = check(Verdict.model_validate(doc), evidence)
    assert [b.sha for b in clean.blamed_commits] == [BYSTANDER]
    assert clean.cited_files == ["src/checkout/discounts.py"]
    assert clean.cited_metrics == ["http_requests_errors_ratio"]
    assert clean.actions[0].runbook is None
    assert UNVERIFIED_SHA in clean.summary and UNVERIFIED_FILE in clean.summary
    # A hex id the logs carry (a pod hash) and the text does not call a commit is left alone.
    assert "checkout-7f9c8d6b5" in clean.summary
    joined = " ".join(notes)
    for name in ("9e8d7c6b5a", "config/payments.yaml", "cpu_seconds_total", "Wipe everything"):
        assert name in joined


def test_files_named_by_stack_frames_may_be_cited() -> None:
    doc = verdict(summary="The frame at src/checkout/payments.py shows the call.", cited_files=["src/checkout/payments.py"])
    clean, notes = check(Verdict.model_validate(doc), make_evidence())
    assert clean.cited_files == ["src/checkout/payments.py"] and notes == []


def test_blaming_no_change_caps_every_suspect_below_a_culprit_score() -> None:
    evidence, alert = make_evidence(), make_alert()
    clean, _ = check(Verdict.model_validate(verdict(category="expired_credential", blamed_commits=[])), evidence)
    report = apply_verdict(offline_report(evidence, alert), clean, usage=Usage(llm_calls=2))
    assert report.root_cause.category == "expired_credential"
    assert max(s.score for s in report.suspect_commits) <= 0.3
    assert report.analyst == "crew" and report.usage.llm_calls == 2


def test_reranking_keeps_scores_in_rank_order() -> None:
    evidence, alert = make_evidence(), make_alert()
    doc = verdict(
        blamed_commits=[{"sha": BYSTANDER, "likelihood": 0.6, "reason": "r1"}, {"sha": CULPRIT, "likelihood": 0.8, "reason": "r2"}]
    )
    clean, _ = check(Verdict.model_validate(doc), evidence)
    report = apply_verdict(offline_report(evidence, alert), clean, usage=Usage())
    assert [s.sha for s in report.suspect_commits] == [BYSTANDER, CULPRIT]
    scores = [s.score for s in report.suspect_commits]
    assert scores == sorted(scores, reverse=True)
