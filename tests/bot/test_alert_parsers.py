"""Each tool's Slack layout read into one AlertPost: id, status, title, labels, and the catalog service they name."""

from __future__ import annotations

import copy

import pytest
from bot_harness import fixture

from bot.alerts import parser_for, recognise
from bot.alerts.base import AlertPost
from bot.service_mapping import catalog_service_for_alert
from core.catalog import Catalog, ServiceSpec
from core.settings import Settings

CATALOG = Catalog(
    services={
        "checkout": ServiceSpec(aliases=["checkout-api"]),
        "notifications-worker": ServiceSpec(aliases=["Notifications Worker", "notif"], pagerduty_service_ids=["PNW0RK1"]),
        "payments-api": ServiceSpec(),
    }
)
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


def _event(name: str) -> dict:
    event = fixture(name)["event"]
    return event["message"] if event.get("subtype") == "message_changed" else event


def _read(name: str) -> AlertPost:
    found = recognise(_event(name))
    assert found is not None, name
    _parser, post = found
    assert post is not None, name
    return post


@pytest.mark.parametrize(
    ("firing", "resolved", "tool", "service"),
    [
        ("alertmanager_firing.json", "alertmanager_resolved.json", "alertmanager", "checkout"),
        ("grafana_firing.json", "grafana_resolved.json", "grafana", "checkout"),
        ("datadog_triggered.json", "datadog_recovered.json", "datadog", "notifications-worker"),
        ("opsgenie_created.json", "opsgenie_closed_edit.json", "opsgenie", "checkout"),
        ("cloudwatch_alarm.json", "cloudwatch_ok.json", "cloudwatch", "notifications-worker"),
        ("pagerduty_post_triggered.json", "pagerduty_post_resolved.json", "pagerduty", "notifications-worker"),
    ],
)
def test_each_tool_firing_and_resolved_posts_share_one_alert_id_and_name_a_catalog_service(
    firing: str, resolved: str, tool: str, service: str
) -> None:
    fired, ended = _read(firing), _read(resolved)

    assert (fired.tool, fired.status) == (tool, "triggered")
    assert (ended.tool, ended.status) == (tool, "resolved")
    assert fired.alert_id == ended.alert_id and fired.key == ended.key
    assert fired.title and fired.url
    assert catalog_service_for_alert(CATALOG, SETTINGS, fired) == service


def test_alertmanager_post_reads_title_group_and_detail_labels() -> None:
    post = _read("alertmanager_firing.json")

    assert post.title == "HighErrorRate (checkout prod critical)"
    assert post.labels["namespace"] == "shop" and post.labels["pod"] == "checkout-7d9f8b6c5-x2k4q"
    assert post.url == "http://alertmanager.example.com:9093/#/alerts?receiver=slack-oncall"


def test_alertmanager_default_template_without_text_maps_a_pod_name_to_its_workload() -> None:
    message = _event("alertmanager_firing.json")
    message["attachments"][0].update(text="", title="[FIRING:1] KubePodCrashLooping (shop checkout-api-5f7c9d8b7-abcde warning)")

    post = _read_message(message)

    assert post.urgency == "high" and post.tool == "alertmanager"
    assert catalog_service_for_alert(CATALOG, SETTINGS, post) == "checkout"


def _read_message(message: dict) -> AlertPost:
    found = recognise(message)
    assert found is not None and found[1] is not None
    return found[1]


def test_grafana_post_is_told_from_alertmanager_by_its_footer_and_reads_labels_and_rule_link() -> None:
    post = _read("grafana_firing.json")

    assert post.labels == {"alertname": "HighLatency", "grafana_folder": "Checkout", "namespace": "shop", "service": "checkout-api"}
    assert post.url == "https://grafana.example.com/alerting/grafana/fe1kq2zb7w3r4c/view?orgId=1"
    assert post.summary == "p99 latency of checkout-api above 2s"


def test_datadog_multi_alert_id_is_monitor_and_group() -> None:
    post = _read("datadog_triggered.json")

    assert post.alert_id == "48213377/env:prod,service:notifications-worker"
    assert post.title == "Job failure ratio high"
    assert post.url == "https://app.datadoghq.com/monitors/48213377"
    assert post.labels["team"] == "messaging"


def test_opsgenie_status_comes_from_the_apps_wording_not_the_description() -> None:
    created, closed = _read("opsgenie_created.json"), _read("opsgenie_closed_edit.json")

    assert "connection closed" in created.summary and created.status == "triggered"
    assert closed.status == "resolved"
    assert created.title == "Checkout API p99 latency above 2s" and created.urgency == "high"


def test_cloudwatch_alarm_id_is_account_region_and_name() -> None:
    post = _read("cloudwatch_alarm.json")

    assert post.alert_id == "123456789012/us-east-1/notifications-worker-dlq-depth"
    assert post.title.startswith("CloudWatch alarm notifications-worker-dlq-depth")


def test_a_person_pasting_an_alert_title_is_not_an_alert_post() -> None:
    human = {"type": "message", "user": "U0ONCALL1", "text": "[FIRING:1] HighErrorRate (checkout) is this real?", "ts": "1.2"}

    assert parser_for(human) is None


def test_an_app_id_picks_the_parser_before_any_layout() -> None:
    message = copy.deepcopy(_event("pagerduty_post_triggered.json"))

    assert parser_for(message) is not None and parser_for(message).tool == "pagerduty"  # type: ignore[union-attr]
    assert parser_for({**message, "app_id": "A0OTHER", "bot_id": "B0OTHER", "bot_profile": {}}) is None
    assert parser_for({"bot_id": "B0CUSTOM", "text": "x"}, pagerduty_ids=["B0CUSTOM"]).tool == "pagerduty"  # type: ignore[union-attr]


def test_unmapped_labels_name_no_service() -> None:
    message = _event("alertmanager_firing.json")
    message["attachments"][0].update(text=" *Details:*\n  • *service:* `ledger`\n", title="[FIRING:1] DiskFull (ledger)")

    assert catalog_service_for_alert(CATALOG, SETTINGS, _read_message(message)) is None


def test_alertmanager_graph_link_carries_the_rules_expression_to_the_alert() -> None:
    message = _event("alertmanager_firing.json")
    # The usual `*Graph:*` line links the rule's generatorURL; Slack escapes `&` in message text.
    graph = "http://prometheus.example.com:9090/graph?g0.expr=sum%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29%29+%3E+1&amp;g0.tab=1"
    message["attachments"][0]["text"] += f"  *Graph:* <{graph}|:chart_with_upwards_trend:>\n"

    post = _read_message(message)
    alert = post.to_alert(service="checkout", source="alert_post")

    assert post.labels["generator_url"] == graph
    assert alert.expressions == ['sum(rate(http_requests_total{code=~"5.."}[5m])) > 1']
    assert _read("alertmanager_firing.json").to_alert(service="checkout", source="alert_post").expressions == []
