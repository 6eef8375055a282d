"""Secrets never shown; the [notify] table read as documented."""

from __future__ import annotations

import pytest

from trainsentry.consumers.cli import main
from trainsentry.consumers.notify.destinations import DestinationError, parse_destinations
from trainsentry.consumers.notify.redaction import Redactor, label
from trainsentry.consumers.notify.settings import NotifySettings, load_notify_settings
from trainsentry.consumers.notify.severity import Severity
from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import load_config

SECRET_URLS = {
    "https://hooks.slack.com/services/T0ABCDEF/B0ABCDEF/sekritsekritsekrit": "sekritsekritsekrit",
    "slack://T0ABCDEF/B0ABCDEF/sekritsekritsekrit/#ml": "sekritsekritsekrit",
    "discord://123456789/sekrit-webhook-token": "sekrit-webhook-token",
    "mailtos://bot:hunter2-pw@mail.example.com?to=ml@example.com": "hunter2-pw",
    "json://hooks.example.com/path/sekrit-path-token": "sekrit-path-token",
    "msteams://team@tenant/sekritA/sekritB/sekritC": "sekritB",
    "tgram://123456:sekrit-bot-token/-100123": "sekrit-bot-token",
}


@pytest.mark.parametrize("url", sorted(SECRET_URLS))
def test_a_label_never_holds_the_secret(url: str) -> None:
    secret = SECRET_URLS[url]
    assert secret not in label(url)
    text = f"POST {url} failed; token={secret}; %s" % url.replace(secret, secret.upper())
    assert secret not in Redactor(url).scrub(text)


def test_a_bad_url_is_named_without_its_secret(capsys) -> None:
    with pytest.raises(DestinationError) as caught:
        parse_destinations(["nosuchservice://user:hunter2-pw@host.example.com/x"])
    assert "hunter2-pw" not in str(caught.value)
    assert main(["notify", "--to", "nosuchservice://sekrit-token-value/x"]) == 2
    err = capsys.readouterr().err
    assert "sekrit-token-value" not in err and err.count("\n") == 1 and "destination 1" in err


def test_no_destination_is_one_line(capsys) -> None:
    assert main(["notify"]) == 2
    assert "no destination" in capsys.readouterr().err


def test_the_notify_table_and_the_options(tmp_path) -> None:
    config = tmp_path / "trainsentry.toml"
    config.write_text('[[rules]]\ntype = "LossNotDecreasing"\n\n'
                      '[notify]\nto = ["json://localhost:8080/a"]\nwait_seconds = 60\n'
                      'rules = ["LossNotDecreasing"]\nmin_severity = "error"\n')
    settings = load_notify_settings(config)
    assert settings == NotifySettings(to=("json://localhost:8080/a",), wait_seconds=60.0,
                                      rules=("LossNotDecreasing",), min_severity=Severity.ERROR)
    assert load_config(config).rules[0].rule_type == "LossNotDecreasing"  # the rules skip [notify]
    over = settings.overridden(to=("json://localhost:9/b",), wait_seconds=None, trials=())
    assert (over.to, over.wait_seconds, over.trials) == (("json://localhost:9/b",), 60.0, ())


@pytest.mark.parametrize("table, problem", [
    ('wait_seconds = "5m"', "'wait_seconds': expected a number >= 0"),
    ('min_severity = "fatal"', "'min_severity': expected one of info, warning, error"),
    ('to = ["ok", 3]', "'to': expected a string or a list"),
    ('colour = "red"', "'colour': unknown setting"),
])
def test_a_bad_notify_setting_is_one_line_naming_it(tmp_path, table: str, problem: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[notify]\n{table}\n")
    with pytest.raises(ConfigError, match=problem):
        load_notify_settings(config)


def test_a_file_without_the_table_gives_the_defaults(tmp_path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"DebugRuleConfigurations": []}')
    assert load_notify_settings(config) == NotifySettings()
