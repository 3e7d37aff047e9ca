"""What AWS will create from template.yaml, for every documented set of
parameters, held against the AWS pages that state the rules.

A row is `PARAMETER-SET::RULE`; a failing row says what the stack would hold
and what the rule asks. Run by scripts/test.sh (`pytest tests/deploy`);
MEDIA_TEMPLATE=path runs it on another template.

Pages the rules come from:
- LAMBDA_URL_AUTH: "Control access to Lambda function URLs",
  https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html: with NONE "your
  function's resource-based policy is always in effect and must grant public
  access"; "Starting in October 2025, new function URLs will require both
  lambda:InvokeFunctionUrl and lambda:InvokeFunction permissions."
- CLOUDFRONT_OAC_LAMBDA: "Restrict access to an AWS Lambda function URL
  origin", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-lambda.html:
  the distribution is granted lambda:InvokeFunctionUrl and
  lambda:InvokeFunction, each with its ARN as the source.
- CLOUDFRONT_OAC_S3: "Restrict access to an Amazon S3 origin",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html:
  the bucket policy grants cloudfront.amazonaws.com s3:GetObject with
  AWS:SourceArn the distribution.
- RANGE_GETS: "How CloudFront processes partial requests for an object (range
  GETs)": an origin answering a Range GET with Transfer-Encoding: chunked makes
  CloudFront return the whole object; a streamed Function URL always answers
  chunked.
- MANAGED_CACHE_POLICIES: "Use managed cache policies": CachingOptimized keeps
  no query string in the cache key; CachingDisabled caches nothing.
- ERROR_CACHING: "Control how long CloudFront caches errors": 4xx and 5xx are
  cached 10 s unless ErrorCachingMinTTL says otherwise; ErrorCode takes 400,
  403, 404, 405, 414, 416 among the 4xx.
- CLOUDFRONT_FUNCTION_QUOTAS: "Quotas on CloudFront Functions": "Maximum size
  of a function: 10 KB".
- LAMBDA_QUOTAS: "Lambda quotas",
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html:
  "Function environment variables: 4 KB, for all environment variables
  associated with the function, in aggregate"; deployment package "250 MB
  unzipped, including layers".
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from stack import (
    BUCKET,
    DISTRIBUTION_ARN,
    FUNCTION,
    FUNCTION_URL,
    ROOT,
    Refused,
    Stack,
    source,
)

EXISTING = "media-example-bucket"
SECRET = "s3cret-of-thirty-two-bytes-or-more-0123"
KEYS = "k2:second-secret-of-thirty-two-bytes-000,k1:first-secret-of-thirty-two-bytes-0000"


UNBOUNDED = 4096


def longest(parameter: str, unit: str) -> str:
    """The longest value of a parameter that its MaxLength and pattern allow,
    made by repeating a unit that matches the pattern. A parameter with no
    MaxLength gets 4 KiB: the size rows then fail and name it."""
    limit = int(source()["Parameters"][parameter].get("MaxLength", UNBOUNDED))
    return (unit * limit)[:limit]


def longest_sizes() -> str:
    limit = int(source()["Parameters"]["ImageSizes"]["MaxLength"])
    return ("16384," * limit)[:limit].rstrip(",")


# Every combination the README documents, and the longest values each
# parameter accepts.
MATRIX: dict[str, dict[str, str]] = {
    "samples-only": {},
    "samples-only-aws-iam": {"AuthType": "AWS_IAM"},
    "samples-only-index": {"EnableIndex": "true"},
    "samples-only-signed": {"SigningSecret": SECRET},
    "samples-only-x86_64": {"Architecture": "x86_64"},
    "created-bucket": {"CreateBucket": "true"},
    "created-bucket-index": {"CreateBucket": "true", "EnableIndex": "true"},
    "existing-bucket": {"BucketName": EXISTING},
    "existing-bucket-aws-iam": {"BucketName": EXISTING, "AuthType": "AWS_IAM"},
    "existing-bucket-prefix": {"BucketName": EXISTING, "KeyPrefix": "videos"},
    "existing-bucket-nested-prefix-index": {
        "BucketName": EXISTING,
        "KeyPrefix": "media/videos/",
        "EnableIndex": "true",
    },
    "existing-bucket-custom-derived": {"BucketName": EXISTING, "DerivedPrefix": "cache/renders/"},
    "existing-bucket-no-derived": {"BucketName": EXISTING, "DerivedPrefix": ""},
    "reserved-concurrency": {"ReservedConcurrency": "50"},
    "metrics-off": {"Metrics": "off"},
    "alarm-email": {"AlarmEmail": "ops@example.com"},
    "metrics-off-alarm-email": {"Metrics": "off", "AlarmEmail": "ops@example.com"},
    "cloudfront-created-bucket": {"CreateBucket": "true", "EnableCloudFront": "true"},
    "cloudfront-created-bucket-signed-index": {
        "CreateBucket": "true",
        "EnableCloudFront": "true",
        "SigningSecret": SECRET,
        "EnableIndex": "true",
    },
    "cloudfront-existing-bucket-keys-prefix": {
        "BucketName": EXISTING,
        "KeyPrefix": "videos/",
        "EnableCloudFront": "true",
        "SigningKeys": KEYS,
    },
    "cloudfront-aws-iam-custom-derived": {
        "CreateBucket": "true",
        "EnableCloudFront": "true",
        "AuthType": "AWS_IAM",
        "DerivedPrefix": "cache/",
    },
}


def longest_sets() -> dict[str, dict[str, str]]:
    common = {
        "BucketName": longest("BucketName", "m"),
        "KeyPrefix": longest("KeyPrefix", "segment/"),
        "DerivedPrefix": longest("DerivedPrefix", "derived/"),
        "ImageSizes": longest_sizes(),
        "SigningSkewSecs": "3600",
        "RangeChunkBytes": "200000000",
        "EnableCloudFront": "true",
        "EnableIndex": "true",
        "AlarmEmail": "ops@example.com",
    }
    return {
        "longest-secret": {**common, "SigningSecret": longest("SigningSecret", "S")},
        "longest-keys": {**common, "SigningKeys": longest("SigningKeys", "kid:" + "K" * 40 + ",")},
    }


MATRIX.update(longest_sets())

# Sets a rule must refuse, and the rule and assertion (its index) that
# refuse each.
REFUSED: dict[str, tuple[dict[str, str], tuple[str, int]]] = {
    "cloudfront-without-bucket": ({"EnableCloudFront": "true"}, ("CloudFrontServesABucket", 0)),
    "cloudfront-without-derived-prefix": (
        {"EnableCloudFront": "true", "CreateBucket": "true", "DerivedPrefix": ""},
        ("CloudFrontKeepsDerivatives", 0),
    ),
    "two-signing-settings": ({"SigningSecret": SECRET, "SigningKeys": KEYS}, ("OneSigningSetting", 0)),
}


# What the parameters ask for, read from them alone -----------------------------


def serves_bucket(p: dict[str, Any]) -> str | None:
    if p["CreateBucket"] == "true":
        return BUCKET
    return p["BucketName"] or None


def key_prefix(p: dict[str, Any]) -> str:
    prefix = p["KeyPrefix"]
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def behind_cloudfront(p: dict[str, Any]) -> bool:
    return p["EnableCloudFront"] == "true"


def signing(p: dict[str, Any]) -> bool:
    return bool(p["SigningSecret"] or p["SigningKeys"])


def grant(action: str, principal: str, **rest: Any) -> tuple:
    return (action, principal, tuple(sorted(rest.items())))


# The rules ---------------------------------------------------------------------


def invokers(stack: Stack) -> None:
    """Who may invoke the function, and through which door (LAMBDA_URL_AUTH,
    CLOUDFRONT_OAC_LAMBDA)."""
    p = stack.parameters
    url = stack.one("AWS::Lambda::Url")
    granted = set()
    for name, permission in stack.of_type("AWS::Lambda::Permission").items():
        props = permission["Properties"]
        assert props["FunctionName"] == FUNCTION, f"{name} is for {props['FunctionName']}"
        rest = {k: v for k, v in props.items() if k not in ("Action", "Principal", "FunctionName")}
        granted.add(grant(props["Action"], props["Principal"], **rest))
    if behind_cloudfront(p):
        want_auth = "AWS_IAM"
        want = {
            grant("lambda:InvokeFunctionUrl", "cloudfront.amazonaws.com",
                  FunctionUrlAuthType="AWS_IAM", SourceArn=DISTRIBUTION_ARN),
            grant("lambda:InvokeFunction", "cloudfront.amazonaws.com", SourceArn=DISTRIBUTION_ARN),
        }
    elif p["AuthType"] == "NONE":
        want_auth = "NONE"
        want = {
            grant("lambda:InvokeFunctionUrl", "*", FunctionUrlAuthType="NONE"),
            grant("lambda:InvokeFunction", "*", InvokedViaFunctionUrl=True),
        }
    else:
        want_auth = "AWS_IAM"
        want = set()
    assert url["AuthType"] == want_auth, f"the Function URL's AuthType is {url['AuthType']}, not {want_auth}"
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert granted == want, (
        f"the function's resource policy grants {sorted(granted)}; it must grant exactly {sorted(want)}"
        f" (missing {sorted(want - granted)}, extra {sorted(granted - want)})"
    )


def role(stack: Stack) -> None:
    """Least privilege: reads only under KeyPrefix, writes and deletes only
    under DerivedPrefix, lists only the prefix with the index on and only
    the derived prefix with a derived store;
    no "*" resource on any S3 or Lambda action."""
    p = stack.parameters
    props = stack.one("AWS::IAM::Role")
    assert props["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ], props["ManagedPolicyArns"]
    granted = set()
    for policy in props.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                for resource in resources:
                    if action.startswith(("s3:", "lambda:")):
                        assert resource != "*" and not resource.endswith(":::*"), f"{action} on {resource}"
                    granted.add((action, resource, json.dumps(statement.get("Condition"), sort_keys=True)))
    want = set()
    bucket = serves_bucket(p)
    if bucket:
        want.add(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key_prefix(p)}*", "null"))
        if p["DerivedPrefix"]:
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
                want.add((action, f"arn:aws:s3:::{bucket}/{p['DerivedPrefix']}*", "null"))
            # A render lists its derivative's stored versions, there only.
            listing = {"StringLike": {"s3:prefix": f"{p['DerivedPrefix']}*"}}
            want.add(("s3:ListBucket", f"arn:aws:s3:::{bucket}", json.dumps(listing, sort_keys=True)))
        if p["EnableIndex"] == "true":
            condition = {"StringLike": {"s3:prefix": f"{key_prefix(p)}*"}}
            want.add(("s3:ListBucket", f"arn:aws:s3:::{bucket}", json.dumps(condition, sort_keys=True)))
    assert granted == want, (
        f"the role grants {sorted(granted)}; least privilege is {sorted(want)}"
        f" (extra {sorted(granted - want)}, missing {sorted(want - granted)})"
    )


def bucket_policy(stack: Stack) -> None:
    """Only the distribution reads, only the prefix and the derived prefix
    (CLOUDFRONT_OAC_S3); a created bucket blocks public access."""
    p = stack.parameters
    policies = stack.of_type("AWS::S3::BucketPolicy")
    want = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}},
    }
    bucket = serves_bucket(p)
    resources = sorted({f"arn:aws:s3:::{bucket}/{key_prefix(p)}*", f"arn:aws:s3:::{bucket}/{p['DerivedPrefix']}*"})
    if behind_cloudfront(p) and p["CreateBucket"] == "true":
        assert len(policies) == 1, f"{len(policies)} bucket policies"
        (policy,) = policies.values()
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert len(statements) == 1, statements
        statement = {k: v for k, v in statements[0].items() if k not in ("Sid", "Resource")}
        assert statement == want, statement
        assert sorted(statements[0]["Resource"]) == resources, statements[0]["Resource"]
    else:
        assert not policies, f"a bucket policy where none is wanted: {list(policies)}"
    if behind_cloudfront(p) and p["CreateBucket"] != "true":
        statement = json.loads(stack.outputs["BucketPolicyStatement"])
        assert sorted(statement.pop("Resource")) == resources
        statement.pop("Sid")
        assert statement == want, statement
    if p["CreateBucket"] == "true":
        block = stack.one("AWS::S3::Bucket")["PublicAccessBlockConfiguration"]
        assert block == {k: True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}


CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
# ERROR_CACHING: the 4xx codes a custom error response takes.
FOUR_XX = [400, 403, 404, 405, 414, 416]


def cloudfront(stack: Stack) -> None:
    """No behaviour sends media to the streaming URL (RANGE_GETS); no cache
    key holds a signature (MANAGED_CACHE_POLICIES); 4xx answers are not
    cached (ERROR_CACHING); with signing, every behaviour checks links; what
    S3 serves passes the viewer-response function (stored documents' CSP)."""
    p = stack.parameters
    distributions = stack.of_type("AWS::CloudFront::Distribution")
    if not behind_cloudfront(p):
        assert not distributions
        return
    config = stack.one("AWS::CloudFront::Distribution")["DistributionConfig"]
    function_host = FUNCTION_URL.split("/")[2]
    streaming = {o["Id"] for o in config["Origins"] if o["DomainName"] == function_host}
    assert streaming == {"function-url", "function-derived"}, streaming
    for origin in config["Origins"]:
        assert "OriginAccessControlId" in origin, f"origin {origin['Id']} is reached without OAC"
    behaviours = [("default", config["DefaultCacheBehavior"])] + [
        (b["PathPattern"], b) for b in config.get("CacheBehaviors", [])
    ]
    for pattern, behaviour in behaviours:
        if behaviour["TargetOriginId"] in streaming:
            assert pattern != "default" and pattern.endswith("/"), (
                f"behaviour {pattern} sends paths that name media to the streaming origin "
                f"{behaviour['TargetOriginId']}"
            )
        assert behaviour["CachePolicyId"] in (CACHING_OPTIMIZED, CACHING_DISABLED), (
            f"behaviour {pattern}: cache policy {behaviour['CachePolicyId']} may key on the query "
            "(a signature)"
        )
        assert behaviour["Compress"] is False, f"behaviour {pattern} compresses media"
        assert behaviour["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")
        functions = [f["EventType"] for f in behaviour.get("FunctionAssociations", [])]
        if signing(p):
            assert "viewer-request" in functions, f"behaviour {pattern} does not check signed links"
        if behaviour["TargetOriginId"] not in streaming:
            # S3 answers without the policy the function gives stored
            # documents: the viewer-response function adds it.
            assert "viewer-response" in functions, f"behaviour {pattern}: stored documents get no CSP"
    errors = {e["ErrorCode"]: e for e in config.get("CustomErrorResponses", [])}
    for code in FOUR_XX:
        assert code in errors and errors[code].get("ErrorCachingMinTTL") == 0, (
            f"a {code} is cached (10 s by default): ErrorCachingMinTTL must be 0"
        )


CLOUDFRONT_FUNCTION_BYTES = 10 * 1024
SPARE_BYTES = 1024


def edge_code(stack: Stack) -> None:
    """The CloudFront Function's code stays 1 KiB under 10 KB
    (CLOUDFRONT_FUNCTION_QUOTAS) with the values given."""
    for name, function in stack.of_type("AWS::CloudFront::Function").items():
        code = function["Properties"]["FunctionCode"].encode()
        assert len(code) <= CLOUDFRONT_FUNCTION_BYTES - SPARE_BYTES, (
            f"{name}: {len(code)} bytes of code, over {CLOUDFRONT_FUNCTION_BYTES} - {SPARE_BYTES}"
        )


ENVIRONMENT_BYTES = 4 * 1024


def environment(stack: Stack) -> None:
    """The function's environment within Lambda's 4 KB (LAMBDA_QUOTAS),
    counted as the JSON of the variables, more than AWS counts."""
    variables = stack.one("AWS::Lambda::Function")["Environment"]["Variables"]
    size = len(json.dumps(variables).encode())
    assert size <= ENVIRONMENT_BYTES, f"{size} bytes of environment, over {ENVIRONMENT_BYTES}"


def concurrency(stack: Stack) -> None:
    """ReservedConcurrency caps the function when set, and only then."""
    props = stack.one("AWS::Lambda::Function")
    want = int(stack.parameters["ReservedConcurrency"]) or None
    got = props.get("ReservedConcurrentExecutions")
    assert (int(got) if got is not None else None) == want, f"reserved concurrency {got}, not {want}"


RULES: dict[str, Callable[[Stack], None]] = {
    "concurrency": concurrency,
    "invokers": invokers,
    "role": role,
    "bucket-policy": bucket_policy,
    "cloudfront": cloudfront,
    "edge-code-size": edge_code,
    "environment-size": environment,
}


@pytest.mark.parametrize(
    "name,rule",
    [(n, r) for n in MATRIX for r in RULES],
    ids=[f"{n}::{r}" for n in MATRIX for r in RULES],
)
def test_stack(name: str, rule: str) -> None:
    RULES[rule](Stack(MATRIX[name]))


@pytest.mark.parametrize("name", list(REFUSED), ids=list(REFUSED))
def test_a_rule_refuses(name: str) -> None:
    overrides, (rule, assertion) = REFUSED[name]
    with pytest.raises(Refused) as refused:
        Stack(overrides)
    assert (refused.value.rule, refused.value.assertion) == (rule, assertion), str(refused.value)


def test_every_rule_assertion_is_reachable() -> None:
    """Every assertion of every rule can refuse a stack: a set in REFUSED
    fails it (and every set of the matrix passes them all)."""
    assertions = {
        (name, i) for name, rule in source().get("Rules", {}).items() for i in range(len(rule["Assertions"]))
    }
    reached = {refusal for _, refusal in REFUSED.values()}
    assert assertions == reached, f"assertions no set reaches: {sorted(assertions - reached)}"


LAYER_BYTES = 250 * 1000 * 1000
# The function's own code, measured by scripts/check-deploy.sh on the built
# bootstrap, is under 20 MB; the layer must leave it that room.
FUNCTION_ROOM = 20 * 1000 * 1000


def test_the_layer_leaves_room_for_the_code() -> None:
    """The function and its layers within 250 MB unzipped (LAMBDA_QUOTAS)."""
    layer = sum(f.stat().st_size for f in (ROOT / "sample-media").rglob("*") if f.is_file())
    assert layer + FUNCTION_ROOM <= LAYER_BYTES, f"{layer} bytes of sample media"
