"""Configuration: TOML and SageMaker JSON mean the same; every error names what and where."""

from __future__ import annotations

import json

import pytest

from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import Config, RuleConfig, load_config, parse_config
from trainsentry.rules.metrics import MetricDefinition
from trainsentry.rules.objective import Objective
from trainsentry.rules.registry import RULES

TOML = '''
max_metric_definitions = 25
metric_time_budget_ms = 50

[[rules]]
type = "LossNotDecreasing"
name = "loss-stalled"
collection_names = ["losses", "metrics"]
num_steps = 10
diff_percent = 0.5
mode = "TRAIN"
stop_at_first = true

[[rules]]
type = "WeightUpdateRatio"
num_steps = 1
small_threshold = 1e-8

[[rules]]
type = "SaturatedActivation"
threshold_tanh = [-9.4999, 9.4999]
threshold_sigmoid_min = -23

[[rules]]
type = "PoorWeightInitialization"
activation_inputs_regex = [".*relu_input", ".*gelu_input"]
steps = 10

[[metrics]]
name = "loss"
regex = "Loss = (.*?);"

[[metrics]]
name = "ganloss"
regex = "GAN_loss=(.*?);"

[objective]
metric = "loss"
type = "Minimize"
'''

SAGEMAKER = {
    "TrainingJobName": "gan-1",
    "max_metric_definitions": 25,
    "metric_time_budget_ms": 50,
    "AlgorithmSpecification": {
        "TrainingImage": "123.dkr.ecr/x:latest",
        "MetricDefinitions": [{"Name": "loss", "Regex": "Loss = (.*?);"},
                              {"Name": "ganloss", "Regex": "GAN_loss=(.*?);"}],
    },
    "DebugRuleConfigurations": [
        {"RuleConfigurationName": "loss-stalled", "RuleEvaluatorImage": "503895931360.dkr.ecr",
         "RuleParameters": {"rule_to_invoke": "LossNotDecreasing",
                            "collection_names": "losses, metrics", "num_steps": "10",
                            "diff_percent": "0.5", "mode": "TRAIN", "stop_at_first": "True"}},
        {"RuleConfigurationName": "WeightUpdateRatio",
         "RuleParameters": {"rule_to_invoke": "WeightUpdateRatio", "num_steps": "1",
                            "small_threshold": "0.00000001"}},
        {"RuleConfigurationName": "SaturatedActivation",
         "RuleParameters": {"rule_to_invoke": "SaturatedActivation",
                            "threshold_tanh": "(-9.4999, 9.4999)", "threshold_sigmoid_min": "-23"}},
        {"RuleConfigurationName": "PoorWeightInitialization",
         "RuleParameters": {"rule_to_invoke": "PoorWeightInitialization",
                            "activation_inputs_regex": ".*relu_input, .*gelu_input",
                            "steps": "10"}},
    ],
    "HyperParameterTuningJobConfig": {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
    },
}


def test_toml_and_sagemaker_json_that_mean_the_same_load_equal(tmp_path):
    (tmp_path / "rules.toml").write_text(TOML)
    (tmp_path / "rules.json").write_text(json.dumps(SAGEMAKER))
    from_toml = load_config(tmp_path / "rules.toml")
    assert from_toml == load_config(tmp_path / "rules.json")
    assert [r.name for r in from_toml.rules] == [
        "loss-stalled", "WeightUpdateRatio", "SaturatedActivation", "PoorWeightInitialization"]
    assert from_toml.rules[0].params["collection_names"] == ("losses", "metrics")
    assert from_toml.rules[0].params["stop_at_first"] is True
    assert from_toml.rules[2].params["threshold_sigmoid"] == (-23.0, 16.99999)
    assert from_toml.objective == Objective("loss", "Minimize")
    assert (from_toml.max_metric_definitions, from_toml.metric_time_budget_ms) == (25, 50.0)


def test_sagemaker_json_alternative_places():
    top = {"MetricDefinitions": [{"Name": "loss", "Regex": "l=(.*)"}],
           "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "loss"}}
    nested = {"TrainingJobDefinition": {"AlgorithmSpecification": {
                  "MetricDefinitions": [{"Name": "loss", "Regex": "l=(.*)"}]}},
              "HyperParameterTuningJobConfig": {"HyperParameterTuningJobObjective": {
                  "Type": "Maximize", "MetricName": "loss"}}}
    assert parse_config(json.dumps(top)) == parse_config(json.dumps(nested))
    assert parse_config(json.dumps(top)).objective.type == "Maximize"


def test_format_from_extension_or_content(tmp_path):
    (tmp_path / "a.conf").write_text(json.dumps(SAGEMAKER))
    (tmp_path / "b.conf").write_text(TOML)
    assert load_config(tmp_path / "a.conf") == load_config(tmp_path / "b.conf")


def test_rule_defaults_are_filled_and_name_defaults_to_type():
    config = parse_config('[[rules]]\ntype = "WeightUpdateRatio"\n')
    assert config.rules[0].name == "WeightUpdateRatio"
    assert config.rules[0].params["collection_names"] == ("weights",)
    assert config.rules[0].params["large_threshold"] == 10.0
    assert config.rules[0].build().epsilon == 1e-9


def test_default_config_runs_every_built_in_rule_that_loads_on_its_defaults():
    needs_parameters = ("UnchangedTensor", "AllZero", "TensorVariance")
    assert [r.rule_type for r in Config.default().rules] == [
        rule_type for rule_type in RULES if rule_type not in needs_parameters]


def test_a_configuration_that_yields_nothing_is_an_error():
    # a misspelt top-level key must not start a sidecar that can never alert
    for text in ("", "{}", "[]", '{"TrainingJobName": "x"}'):
        assert "yields no rule and no metric definition" in str(_error(text))
    assert "ignored: TrainingJobName" in str(_error('{"TrainingJobName": "x"}'))
    assert parse_config('[[metrics]]\nname = "a"\nregex = "a(.)"\n').metrics  # metrics alone do
    assert Config().rules == ()  # built by hand (a test, a tool), an empty one is fine


def _error(text: str, format: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        parse_config(text, format)
    assert "\n" not in str(error.value)
    return error.value


def sagemaker_rule(rule: str, name: str = "my-rule", **params: str) -> str:
    return json.dumps({"DebugRuleConfigurations": [{
        "RuleConfigurationName": name, "RuleParameters": {"rule_to_invoke": rule, **params}}]})


@pytest.mark.parametrize("text, owner, parameter", [
    # unknown parameter (a typo SageMaker ignored)
    ('[[rules]]\ntype = "LossNotDecreasing"\nmin_difference = 1\n', "LossNotDecreasing", "min_difference"),
    (sagemaker_rule("LossNotDecreasing", min_difference="1"), "my-rule", "min_difference"),
    # bad values
    ('[[rules]]\ntype = "LossNotDecreasing"\nnum_steps = "ten"\n', "LossNotDecreasing", "num_steps"),
    (sagemaker_rule("LossNotDecreasing", num_steps="2.5"), "my-rule", "num_steps"),
    (sagemaker_rule("LossNotDecreasing", num_steps="0"), "my-rule", "num_steps"),
    (sagemaker_rule("LossNotDecreasing", use_losses_collection="yes"), "my-rule", "use_losses_collection"),
    (sagemaker_rule("LossNotDecreasing", mode="TRAINING"), "my-rule", "mode"),
    (sagemaker_rule("WeightUpdateRatio", epsilon="-1"), "my-rule", "epsilon"),
    (sagemaker_rule("PoorWeightInitialization", patience="0"), "my-rule", "patience"),
    # out-of-range diff_percent
    (sagemaker_rule("LossNotDecreasing", diff_percent="100"), "my-rule", "diff_percent"),
    ('[[rules]]\ntype = "LossNotDecreasing"\ndiff_percent = -0.1\n', "LossNotDecreasing", "diff_percent"),
    # bad regex parameter
    (sagemaker_rule("LossNotDecreasing", tensor_regex="loss, ([a-z"), "my-rule", "tensor_regex"),
])
def test_rule_errors_name_rule_and_parameter(text, owner, parameter):
    error = _error(text)
    assert f"'{owner}'" in str(error) and f"'{parameter}'" in str(error)
    assert error.parameter == parameter


def test_reserved_keys_as_rule_parameters_are_unknown_parameters_not_type_errors():
    # SageMaker RuleParameters with a "name" key, TOML with a "rule_type" key: both used to reach
    # RuleConfig.of as keyword arguments and collide with its own (TypeError, a traceback)
    sagemaker = json.dumps({"DebugRuleConfigurations": [{
        "RuleConfigurationName": "my-rule",
        "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "name": "x"}}]})
    error = _error(sagemaker)
    assert error.parameter == "name" and "'my-rule'" in str(error)
    assert "unknown parameter" in str(error)
    for key in ("rule_type", "rule_to_invoke", "cls"):
        error = _error(f'[[rules]]\ntype = "LossNotDecreasing"\nname = "ld"\n{key} = "x"\n')
        assert error.parameter == key and "'ld'" in str(error) and "unknown parameter" in str(error)
    sagemaker = json.dumps({"DebugRuleConfigurations": [{
        "RuleConfigurationName": "r2",
        "RuleParameters": {"rule_to_invoke": "WeightUpdateRatio", "rule_type": "x"}}]})
    assert _error(sagemaker).parameter == "rule_type"
    # the Python API the same way: name and rule_type are positional, never parameters
    with pytest.raises(ConfigError, match="'n'.*parameter 'name': unknown parameter"):
        RuleConfig.of("LossNotDecreasing", "n", name="x")
    with pytest.raises(ConfigError, match="parameter 'rule_type': unknown parameter"):
        RuleConfig.of("LossNotDecreasing", rule_type="x")


def test_unknown_rule_type_is_named():
    error = _error('[[rules]]\ntype = "LossNotDecreasingg"\nname = "x"\n')
    assert "'x'" in str(error) and "LossNotDecreasingg" in str(error) and "LossNotDecreasing," in str(error)
    error = _error(sagemaker_rule("Confusion", "boom"))  # a SageMaker rule that is not built in
    assert "'boom'" in str(error) and "Confusion" in str(error) and "did you mean" not in str(error)


@pytest.mark.parametrize("written, meant", [("LossNotDecreasng", "LossNotDecreasing"),
                                            ("explodingtensor", "ExplodingTensor"),
                                            ("VanishingGradients", "VanishingGradient"),
                                            ("StalledTraining", "StalledTrainingRule")])
def test_an_unknown_rule_type_suggests_the_closest_built_in_name(written, meant):
    assert f"did you mean {meant!r}?" in str(_error(f'[[rules]]\ntype = "{written}"\n'))
    assert f"did you mean {meant!r}?" in str(_error(sagemaker_rule(written)))


def test_a_bare_json_list_is_the_rule_configurations(tmp_path):
    rules = [{"RuleConfigurationName": "nan", "RuleParameters": {"rule_to_invoke": "ExplodingTensor"}}]
    assert parse_config(json.dumps(rules)) == parse_config(json.dumps({"DebugRuleConfigurations": rules}))
    (tmp_path / "rules.conf").write_text(json.dumps(rules))  # no extension: the content says JSON
    assert load_config(tmp_path / "rules.conf").rules[0].name == "nan"


def test_sagemaker_keys_that_do_not_apply_are_accepted_and_listed():
    document = {
        "TrainingJobName": "gan-1", "RoleArn": "arn:aws:iam::1:role/r",
        "AlgorithmSpecification": {"TrainingImage": "img", "MetricDefinitions": [
            {"Name": "loss", "Regex": "Loss = (.*?);"}]},
        "DebugRuleConfigurations": [{
            "RuleConfigurationName": "stalled", "RuleEvaluatorImage": "img", "InstanceType": "ml.t3.medium",
            "VolumeSizeInGB": 0, "LocalPath": "/opt/ml/processing/output/rule",
            "S3OutputPath": "s3://bucket/out",
            "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "base_trial": "s3://bucket/run"}}]}
    config = parse_config(json.dumps(document))
    assert config.ignored == (
        "TrainingJobName", "RoleArn", "AlgorithmSpecification.TrainingImage",
        "RuleEvaluatorImage of rule 'stalled'", "InstanceType of rule 'stalled'",
        "VolumeSizeInGB of rule 'stalled'", "LocalPath of rule 'stalled'",
        "S3OutputPath of rule 'stalled'", "RuleParameters.base_trial of rule 'stalled'")
    assert "base_trial" not in config.rules[0].params


def test_near_misses_of_keys_that_are_read_and_unknown_rule_fields_are_errors():
    error = _error(json.dumps({"DebugRuleConfiguration": []}))
    assert error.parameter == "DebugRuleConfiguration" and "'DebugRuleConfigurations'" in str(error)
    error = _error(json.dumps({"AlgorithmSpecification": {"MetricDefinition": []}}))
    assert "config.AlgorithmSpecification" in str(error) and "'MetricDefinitions'" in str(error)
    error = _error(json.dumps([{"RuleConfigurationName": "r", "RuleParameter": {}}]))
    assert error.parameter == "RuleParameter" and "'r'" in str(error)
    # an unknown rule parameter stays an error
    assert _error(sagemaker_rule("LossNotDecreasing", base_trail="x")).parameter == "base_trail"


def test_severity_in_both_formats_with_defaults_per_rule_type():
    toml = ('[[rules]]\ntype = "LossNotDecreasing"\nseverity = "error"\n'
            '[[rules]]\ntype = "ExplodingTensor"\n[[rules]]\ntype = "VanishingGradient"\n'
            'severity = "Info"\n')
    config = parse_config(toml)
    assert [rule.params["severity"] for rule in config.rules] == ["error", "error", "info"]
    assert [rule.build().severity for rule in config.rules] == ["error", "error", "info"]
    assert parse_config(sagemaker_rule("LossNotDecreasing", "r", severity="error")).rules[0].params[
        "severity"] == "error"
    assert parse_config(sagemaker_rule("LossNotDecreasing", "r")).rules[0].params["severity"] == "warning"
    error = _error(sagemaker_rule("LossNotDecreasing", "r", severity="critical"))
    assert error.parameter == "severity" and "info, warning, error" in str(error)


def test_what_was_loaded_is_described_one_line_each():
    config = parse_config(TOML)
    lines = config.describe()
    assert len(lines) == len(config.rules) + len(config.metrics) + 1  # and the objective
    assert lines[0].startswith("rule 'loss-stalled' (LossNotDecreasing, severity warning): ")
    assert "num_steps=10" in lines[0] and "collection_names=[losses, metrics]" in lines[0]
    assert lines[4] == "metric definition 'loss': regex 'Loss = (.*?);'"
    assert lines[-1] == "objective: Minimize 'loss'"
    assert all("\n" not in line for line in lines)


def test_missing_rule_type_is_named():
    assert _error('[[rules]]\nnum_steps = 3\n').parameter == "type"
    missing = json.dumps({"DebugRuleConfigurations": [{"RuleConfigurationName": "r",
                                                       "RuleParameters": {"num_steps": "3"}}]})
    error = _error(missing)
    assert error.parameter == "rule_to_invoke" and "'r'" in str(error)


def test_duplicate_rule_names_are_rejected():
    text = '[[rules]]\ntype = "LossNotDecreasing"\n[[rules]]\ntype = "LossNotDecreasing"\n'
    assert "two rules have this name" in str(_error(text))


@pytest.mark.parametrize("regex, problem", [("Loss = (.*?;", "does not compile"),
                                            ("Loss = .*?;", "capture group")])
def test_metric_definition_errors_name_the_definition(regex, problem):
    text = json.dumps({"MetricDefinitions": [{"Name": "loss", "Regex": regex}]})
    error = _error(text)
    assert "metric definition 'loss'" in str(error) and "'Regex'" in str(error) and problem in str(error)
    toml = f'[[metrics]]\nname = "loss"\nregex = {json.dumps(regex)}\n'
    assert str(_error(toml)) == str(error)


def test_too_many_and_duplicate_definitions():
    many = [{"Name": f"m{i}", "Regex": f"m{i}=(.*)"} for i in range(21)]
    assert "limit of 20" in str(_error(json.dumps({"MetricDefinitions": many})))
    assert parse_config(json.dumps({"MetricDefinitions": many, "max_metric_definitions": 21}))
    error = _error(json.dumps({"MetricDefinitions": many[:1] * 2}))
    assert "metric definition 'm0'" in str(error) and "twice" in str(error)
    assert "max_metric_definitions" in str(_error("max_metric_definitions = 41\n"))


def test_unknown_settings_and_fields_are_errors():
    assert _error("max_definitions = 3\n").parameter == "max_definitions"
    assert _error('[[metrics]]\nname = "a"\nregex = "a(.)"\nRegex = "b"\n').parameter == "Regex"
    assert _error('[objective]\nmetric = "a"\ngoal = "min"\n').owner == "objective"


def test_syntax_errors_are_config_errors():
    assert "not valid TOML" in str(_error("[[rules]\n"))
    assert "not valid JSON" in str(_error('{"DebugRuleConfigurations": [}'))
    assert "expected a JSON object or a list" in str(_error("1", "json"))
    assert "rule #1: expected an object" in str(_error("[1]", "json"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml.*cannot be read"):
        load_config(tmp_path / "nope.toml")


def test_rule_config_resolves_like_a_file():
    assert RuleConfig.of("LossNotDecreasing", "x", num_steps="4") == parse_config(
        '[[rules]]\ntype = "LossNotDecreasing"\nname = "x"\nnum_steps = 4\n').rules[0]
    assert Config(metrics=(MetricDefinition("a", "a(.)"),)) == parse_config(
        '[[metrics]]\nname = "a"\nregex = "a(.)"\n')
