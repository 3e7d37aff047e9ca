"""What `sam deploy` makes of template.yaml for one set of parameters.

`sam deploy` sends the template to CloudFormation, which runs the SAM transform
(samtranslator, the version the SAM CLI in .venv/ carries) with the stack's
parameter values, checks the parameters against their constraints, evaluates
`Rules` (a failing assertion stops the deployment), then `Conditions`, and
creates the resources whose condition holds, their intrinsic functions
resolved. `Stack(parameters)` does the same offline: the tests then read the
resources that would exist.

Names of things AWS makes at deploy time (the bucket's generated name, the
distribution's id, the Function URL) are stand-ins of the longest length AWS
gives them, so that size checks hold for any deployment.

Standard library plus samtranslator and the SAM CLI's YAML loader.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
# MEDIA_TEMPLATE=path runs the tests on another template (an older commit's).
TEMPLATE = pathlib.Path(os.environ.get("MEDIA_TEMPLATE", ROOT / "template.yaml"))

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "media-streamer"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
# Physical ids and attributes of resources, as AWS writes them: a generated
# bucket name can take all of S3's 63 characters.
BUCKET = ("media-streamer-mediabucket-" + "a1b2c3d4e5f6" * 4)[:63]
DISTRIBUTION = "E1PDK09ESKHJWT"
FUNCTION = "media-streamer-MediaFunction-AbCdEfGhIjKl"
FUNCTION_URL = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/"
REFS = {
    "MediaBucket": BUCKET,
    "MediaDistribution": DISTRIBUTION,
    "MediaFunction": FUNCTION,
}
ATTRIBUTES = {
    ("MediaBucket", "Arn"): f"arn:aws:s3:::{BUCKET}",
    ("MediaBucket", "RegionalDomainName"): f"{BUCKET}.s3.{REGION}.amazonaws.com",
    ("MediaFunctionUrl", "FunctionUrl"): FUNCTION_URL,
    ("MediaFunction", "Arn"): f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}",
    ("MediaDistribution", "DomainName"): "d111111abcdef8.cloudfront.net",
}
DISTRIBUTION_ARN = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION}"


class Refused(Exception):
    """CloudFormation would refuse the stack: a parameter outside its
    constraints, or a rule's assertion that fails. `rule` names which."""

    def __init__(self, rule: str, why: str, assertion: int = 0):
        super().__init__(f"{rule}: {why}")
        self.rule = rule
        self.assertion = assertion


@functools.cache
def source() -> dict[str, Any]:
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=64)
def transformed(parameters: tuple[tuple[str, str], ...], metadata: bool = False) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it for these parameter
    values; code locations are what `sam deploy` uploads (S3 URIs). With
    `metadata`, a SAM resource's Metadata is kept on what it becomes (where
    checkov reads its suppressions)."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    template = copy.deepcopy(source())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://deploy-bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://deploy-bucket/layer.zip"

    class NoManagedPolicies:
        # Policies given by name need IAM to look them up; this template
        # names none (AWSLambdaBasicExecutionRole comes as an ARN).
        def load(self) -> dict[str, str]:
            return {}

    return transform(template, dict(parameters), NoManagedPolicies(), passthrough_metadata=metadata)


def parameter_values(overrides: dict[str, str]) -> dict[str, Any]:
    """The parameters' defaults with the overrides, checked against each
    parameter's constraints as CloudFormation checks them."""
    declared = source()["Parameters"]
    unknown = set(overrides) - set(declared)
    if unknown:
        raise KeyError(f"no such parameters: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in overrides and "Default" not in spec:
            raise Refused(name, "no value and no default")
        raw = str(overrides.get(name, spec.get("Default")))
        check_constraints(name, spec, raw)
        values[name] = [v.strip() for v in raw.split(",")] if spec["Type"] == "CommaDelimitedList" else raw
    return values


def check_constraints(name: str, spec: dict[str, Any], raw: str) -> None:
    if "AllowedValues" in spec and raw not in [str(v) for v in spec["AllowedValues"]]:
        raise Refused(name, f"{raw!r} is not one of {spec['AllowedValues']}")
    if "MaxLength" in spec and len(raw) > int(spec["MaxLength"]):
        raise Refused(name, f"{len(raw)} characters, more than MaxLength {spec['MaxLength']}")
    if "MinLength" in spec and len(raw) < int(spec["MinLength"]):
        raise Refused(name, f"{len(raw)} characters, fewer than MinLength {spec['MinLength']}")
    # "The pattern must match the entire parameter value provided."
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], raw):
        raise Refused(name, f"{raw!r} does not match {spec['AllowedPattern']}")
    if spec["Type"] == "Number":
        number = float(raw)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise Refused(name, f"{raw} is under MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise Refused(name, f"{raw} is over MaxValue {spec['MaxValue']}")


NO_VALUE = object()


@dataclass
class Stack:
    """The stack one set of parameter overrides makes."""

    overrides: dict[str, str]
    metadata: bool = False
    parameters: dict[str, Any] = field(init=False)
    template: dict[str, Any] = field(init=False)
    conditions: dict[str, bool] = field(init=False)
    resources: dict[str, dict[str, Any]] = field(init=False)
    outputs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = parameter_values(self.overrides)
        flat = {k: ",".join(v) if isinstance(v, list) else v for k, v in self.parameters.items()}
        self.template = transformed(tuple(sorted(flat.items())), self.metadata)
        self.check_rules()
        self.conditions = {}
        for name in self.template.get("Conditions", {}):
            self.condition(name)
        self.resources = {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if self.holds(resource)
        }
        self.outputs = {
            name: self.resolve(output["Value"])
            for name, output in self.template.get("Outputs", {}).items()
            if self.holds(output)
        }

    # Rules and conditions -------------------------------------------------

    def check_rules(self) -> None:
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.truth(rule["RuleCondition"]):
                continue
            for i, assertion in enumerate(rule["Assertions"]):
                if not self.truth(assertion["Assert"]):
                    raise Refused(name, assertion.get("AssertDescription", ""), i)

    def holds(self, resource: dict[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.template["Conditions"][name])
        return self.conditions[name]

    def truth(self, node: Any) -> bool:
        (fn, args), = node.items()
        if fn == "Condition":
            return self.condition(args)
        if fn == "Fn::Equals":
            return self.resolve(args[0]) == self.resolve(args[1])
        if fn == "Fn::Not":
            return not self.truth(args[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in args)
        if fn == "Fn::Contains":
            return self.resolve(args[1]) in self.resolve(args[0])
        if fn == "Fn::EachMemberEquals":
            return all(v == self.resolve(args[1]) for v in self.resolve(args[0]))
        raise ValueError(f"not a condition: {node}")

    # Intrinsic functions --------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """The value CloudFormation gives a property: intrinsics evaluated,
        AWS::NoValue dropped."""
        if isinstance(node, list):
            items = [self.resolve(v) for v in node]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, args), = node.items()
            if key == "Ref":
                return self.ref(args)
            if key == "Fn::GetAtt":
                logical, attribute = args.split(".", 1) if isinstance(args, str) else args
                return self.get_att(logical, attribute)
            if key == "Fn::If":
                return self.resolve(args[1] if self.condition(args[0]) else args[2])
            if key == "Fn::Sub":
                return self.sub(args)
            if key == "Fn::Join":
                return self.resolve(args[0]).join(str(v) for v in self.resolve(args[1]))
            if key == "Fn::Split":
                return self.resolve(args[1]).split(self.resolve(args[0]))
            if key == "Fn::Select":
                return self.resolve(args[1])[int(self.resolve(args[0]))]
            if key == "Fn::Base64":
                return base64.b64encode(self.resolve(args).encode()).decode()
            if key.startswith("Fn::") or key == "Condition":
                if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
                    return self.truth(node)
                raise ValueError(f"{key} is not evaluated here")
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        return REFS.get(name, f"<{name}>")

    def get_att(self, logical: str, attribute: str) -> str:
        return ATTRIBUTES.get((logical, attribute), f"<{logical}.{attribute}>")

    def sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
        values = {k: self.resolve(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    # Reading the resources --------------------------------------------------

    def as_template(self) -> dict[str, Any]:
        """The resources that would exist, as a template of their own."""
        return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": self.resources}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        found = list(self.of_type(kind).values())
        assert len(found) == 1, f"{len(found)} resources of type {kind}, not 1"
        return found[0]["Properties"]
