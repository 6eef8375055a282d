"""The catalogue's rules load from TOML and from SageMaker JSON (string parameters) to equal configurations."""

from __future__ import annotations

import json

import pytest

from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import parse_config

# rule type -> (TOML parameters as written natively, the same as SageMaker's strings)
CASES = {
    "ExplodingTensor": ('collection_names = ["gradients", "losses"]\nonly_nan = true',
                        {"collection_names": "gradients, losses", "only_nan": "True"}),
    "VanishingGradient": ('threshold = 1e-6\ntensor_regex = [".*grad"]',
                          {"threshold": "0.000001", "tensor_regex": ".*grad"}),
    "DeadRelu": ('tensor_regex = [".*relu_output"]\nthreshold_inactivity = 2\nthreshold_layer = 40',
                 {"tensor_regex": ".*relu_output", "threshold_inactivity": "2.0",
                  "threshold_layer": "40"}),
    "UnchangedTensor": ('collection_names = ["weights"]\nnum_steps = 5\nrtol = 1e-4\n'
                        'atol = 1e-7\nequal_nan = true',
                        {"collection_names": "weights", "num_steps": "5", "rtol": "0.0001",
                         "atol": "1e-7", "equal_nan": "true"}),
    "AllZero": ('tensor_regex = [".*bias", ".*weight"]\nthreshold = 95',
                {"tensor_regex": ".*bias, .*weight", "threshold": "95.0"}),
    "TensorVariance": ('collection_names = ["weights"]\nmax_threshold = 10\nmin_threshold = 1e-5',
                       {"collection_names": "weights", "max_threshold": "10",
                        "min_threshold": "0.00001"}),
    "Overfit": ('start_step = 100\npatience = 3\nratio_threshold = 0.2',
                {"start_step": "100", "patience": "3", "ratio_threshold": "0.2"}),
    "Overtraining": ('patience_train = 10\npatience_validation = 20\ndelta = 0.05',
                     {"patience_train": "10", "patience_validation": "20", "delta": "0.05"}),
    "ClassImbalance": ('threshold_imbalance = 5\nthreshold_misprediction = 0.5\nsamples = 1000\n'
                       'argmax = true\nlabels_regex = [".*y_true"]\npredictions_regex = [".*logits"]',
                       {"threshold_imbalance": "5", "threshold_misprediction": "0.5",
                        "samples": "1000", "argmax": "True", "labels_regex": ".*y_true",
                        "predictions_regex": ".*logits"}),
}


def sagemaker(rule_type: str, params: dict[str, str]) -> str:
    return json.dumps({"DebugRuleConfigurations": [{
        "RuleConfigurationName": f"my-{rule_type}",
        "RuleEvaluatorImage": "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest",
        "RuleParameters": {"rule_to_invoke": rule_type, **params}}]})


@pytest.mark.parametrize("rule_type", sorted(CASES))
def test_toml_and_sagemaker_json_load_to_equal_configurations(rule_type):
    toml, params = CASES[rule_type]
    from_toml = parse_config(f'[[rules]]\ntype = "{rule_type}"\nname = "my-{rule_type}"\n{toml}\n')
    from_json = parse_config(sagemaker(rule_type, params))
    assert from_toml == from_json
    (rule,) = from_json.rules
    assert rule.rule_type == rule_type
    built = rule.build()
    assert type(built).rule_type == rule_type and built.name == f"my-{rule_type}"
    # every given parameter took effect (none left at its default)
    defaults = {key: param.default for key, param in type(built).params.items()}
    assert all(rule.params[key] != defaults[key] for key in params)


@pytest.mark.parametrize("rule_type", ["UnchangedTensor", "AllZero", "TensorVariance"])
def test_a_missing_selection_is_an_error_naming_the_rule_in_both_formats(rule_type):
    extra = {"max_threshold": "1"} if rule_type == "TensorVariance" else {}
    with pytest.raises(ConfigError, match=f"rule 'my-{rule_type}' .*one is required"):
        parse_config(sagemaker(rule_type, extra))
    with pytest.raises(ConfigError, match=f"rule '{rule_type}' .*one is required"):
        parse_config(f'[[rules]]\ntype = "{rule_type}"\n'
                     + "".join(f"{k} = {v}\n" for k, v in extra.items()))


def test_an_unknown_parameter_is_an_error_naming_it_and_the_rule():
    with pytest.raises(ConfigError, match="rule 'my-Overfit' \\(Overfit\\): parameter "
                                          "'patience_train': unknown parameter"):
        parse_config(sagemaker("Overfit", {"patience_train": "5"}))
