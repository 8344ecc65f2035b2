"""template.yaml checked against the code: table definitions, each function's environment
(loaded by the function's own config code) and least-privilege IAM."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ROOT / "target" / "debug" / "llmxt-admin"

# Valid stand-ins for parameters that have no default.
SAMPLE_PARAMETERS = {
    "DodoWebhookSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "EntitlementSecret": "sample-entitlement-secret-0123456789abcdef",
    "HmacSecret": "sample-hmac-secret-0123456789abcdef012345",
    "SiteUrl": "https://pro.example.com",
}

FUNCTIONS = {
    "WebhookFunction": "webhook",
    "SuccessRedirectFunction": "success-redirect",
    "EntitlementFunction": "entitlement",
}

# (action, table resource) pairs each function may use, and no more.
EXPECTED_ACCESS = {
    "WebhookFunction": {
        ("dynamodb:BatchGetItem", "PaymentsTable"),
        ("dynamodb:BatchGetItem", "EntitlementsTable"),
        ("dynamodb:GetItem", "PaymentsTable"),
        ("dynamodb:PutItem", "PaymentsTable"),
        ("dynamodb:GetItem", "EntitlementsTable"),
        ("dynamodb:PutItem", "EntitlementsTable"),
    },
    "SuccessRedirectFunction": {
        ("dynamodb:GetItem", "PaymentsTable"),
        ("dynamodb:PutItem", "PaymentsTable"),
        ("dynamodb:UpdateItem", "PaymentsTable"),
        ("dynamodb:GetItem", "EntitlementsTable"),
    },
    # The usage API (POST /api/usage/*) reads the entitlement and usage items in one batch and
    # writes usage items (in the payments table) by one conditional UpdateItem.
    "EntitlementFunction": {
        ("dynamodb:GetItem", "EntitlementsTable"),
        ("dynamodb:BatchGetItem", "EntitlementsTable"),
        ("dynamodb:BatchGetItem", "PaymentsTable"),
        ("dynamodb:UpdateItem", "PaymentsTable"),
    },
}
DEV_MODE_ACCESS = {("dynamodb:GetItem", "EntitlementsTable"), ("dynamodb:PutItem", "EntitlementsTable")}
# With DodoApiKey set, the success page applies what the API says through the ledger.
API_LEDGER_ACCESS = {
    ("dynamodb:BatchGetItem", "PaymentsTable"),
    ("dynamodb:BatchGetItem", "EntitlementsTable"),
    ("dynamodb:PutItem", "PaymentsTable"),
    ("dynamodb:PutItem", "EntitlementsTable"),
}


@pytest.fixture(scope="module")
def template():
    parsed, problems = decode(str(ROOT / "template.yaml"))
    assert not problems, problems
    return parsed


def admin(*args, env=None):
    assert ADMIN.exists(), f"{ADMIN} is missing: cargo build -p llmxt-admin (scripts/test.sh does)"
    return subprocess.run([str(ADMIN), *args], env=env, capture_output=True, text=True)


def resolve(value, template):
    """Resolves the !Ref values used in environments to what a deployment would pass."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        resources = template["Resources"]
        if name in resources and resources[name]["Type"] == "AWS::DynamoDB::Table":
            table = resources[name]["Properties"]["TableName"]
            return resolve(table, template)
        parameter = template["Parameters"][name]
        # CloudFormation passes every parameter to an environment as a string.
        return str(SAMPLE_PARAMETERS.get(name, parameter.get("Default")))
    assert isinstance(value, str), f"unexpected environment value {value!r}"
    return value


def test_tables_match_the_store_definitions(template):
    env = {"PATH": os.environ.get("PATH", "")}
    result = admin("table-specs", env=env)
    assert result.returncode == 0, result.stderr
    specs = {spec["name"]: spec for spec in json.loads(result.stdout)}
    resources = template["Resources"]
    for logical in ("EntitlementsTable", "PaymentsTable"):
        props = resources[logical]["Properties"]
        spec = specs[resolve(props["TableName"], template)]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["KeySchema"] == [{"AttributeName": spec["partition_key"], "KeyType": "HASH"}]
        attributes = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        assert attributes == {name: "S" for name in spec["attributes"]}
        indexes = props.get("GlobalSecondaryIndexes", [])
        if spec["index"]:
            index = spec["index"]
            assert indexes == [
                {
                    "IndexName": index["name"],
                    "KeySchema": [
                        {"AttributeName": index["hash"], "KeyType": "HASH"},
                        {"AttributeName": index["range"], "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ]
        else:
            assert indexes == []
        ttl = props.get("TimeToLiveSpecification")
        if spec["ttl_attribute"]:
            assert ttl == {"AttributeName": spec["ttl_attribute"], "Enabled": True}
        else:
            assert ttl is None
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert resources[logical]["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_function_environment_starts_the_function(template, logical):
    variables = template["Resources"][logical]["Properties"]["Environment"]["Variables"]
    env = {"PATH": os.environ.get("PATH", "")}
    env.update({name: resolve(value, template) for name, value in variables.items()})
    result = admin("check-config", FUNCTIONS[logical], env=env)
    assert result.returncode == 0, f"{logical} would refuse to start: {result.stderr}"
    reads = set(json.loads(result.stdout)["reads"])
    unread = set(variables) - reads
    assert not unread, f"{logical} sets variables its code never reads: {unread}"


def statements(template, logical):
    found = []
    for policy in template["Resources"][logical]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if isinstance(statement, dict) and "Fn::If" in statement:
                condition, when_true, when_false = statement["Fn::If"]
                found.append((condition, when_true))
                assert when_false == {"Ref": "AWS::NoValue"}
            else:
                found.append((None, statement))
    return found


def access_pairs(statement):
    assert statement["Effect"] == "Allow"
    if statement["Action"] == ["ses:SendEmail"]:
        # The sender's address identity and its domain identity, never a wildcard.
        resources = statement["Resource"]
        assert isinstance(resources, list) and len(resources) == 2, resources
        address, domain = resources
        assert address == {
            "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${RestoreEmailFrom}"
        }, address
        assert domain["Fn::Sub"][0].endswith(":identity/${Identity}"), domain
        assert domain["Fn::Sub"][1]["Identity"]["Fn::If"][0] == "DeclaresSesIdentity", domain
        assert "*" not in json.dumps(resources)
        return {("ses:SendEmail", "RestoreIdentity")}
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    pairs = set()
    for action in actions:
        assert "*" not in action, f"wildcard action {action}"
        for resource in resources:
            assert isinstance(resource, dict) and "Fn::GetAtt" in resource, f"resource must be one table: {resource}"
            logical, attribute = resource["Fn::GetAtt"]
            assert attribute == "Arn"
            pairs.add((action, logical))
    return pairs


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_each_function_gets_only_what_it_uses(template, logical):
    always, conditional = set(), {}
    for condition, statement in statements(template, logical):
        if condition is None:
            always |= access_pairs(statement)
        else:
            conditional.setdefault(condition, set()).update(access_pairs(statement))
    assert always == EXPECTED_ACCESS[logical]
    expected_conditional = (
        {
            "DevMode": DEV_MODE_ACCESS,
            "HasDodoApiKey": API_LEDGER_ACCESS,
            "HasRestoreSender": {("ses:SendEmail", "RestoreIdentity")},
        }
        if logical == "SuccessRedirectFunction"
        else {}
    )
    assert conditional == expected_conditional


def test_secrets_are_noecho_and_prod_refuses_dev_mode(template):
    parameters = template["Parameters"]
    for name in ("DodoWebhookSecret", "EntitlementSecret", "HmacSecret", "DodoApiKey"):
        assert parameters[name].get("NoEcho") is True, name
    rule = template["Rules"]["ProdRefusesDevMode"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "AllowUnverified"}, "false"]}


def test_functions_are_arm64_al2023_rust_builds(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    for logical, binary in FUNCTIONS.items():
        resource = template["Resources"][logical]
        assert resource["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}}
        assert resource["Properties"]["CodeUri"] == "."


def test_routes(template):
    routes = {}
    for logical in FUNCTIONS:
        for event in template["Resources"][logical]["Properties"]["Events"].values():
            assert event["Type"] == "HttpApi"
            routes[event["Properties"]["Path"]] = logical
    assert routes == {
        "/api/webhooks/dodo": "WebhookFunction",
        "/upgrade/success": "SuccessRedirectFunction",
        "/upgrade/restore": "SuccessRedirectFunction",
        "/upgrade/checkout": "SuccessRedirectFunction",
        "/upgrade/billing": "SuccessRedirectFunction",
        "/upgrade/plan": "SuccessRedirectFunction",
        "/upgrade/{proxy+}": "SuccessRedirectFunction",
        "/api/entitlement": "EntitlementFunction",
        "/api/usage/{action}": "EntitlementFunction",
    }


def test_public_routes_are_throttled_and_the_webhook_keeps_capacity(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
    }
    webhook = template["Resources"]["WebhookFunction"]["Properties"]
    assert webhook["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservesWebhookConcurrency", {"Ref": "WebhookReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def test_alarms_watch_fail_open_fail_closed_and_attention_lines(template):
    resources = template["Resources"]
    filters = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Logs::MetricFilter"
    }
    patterns = {f["MetricTransformations"][0]["MetricName"]: f["FilterPattern"] for f in filters.values()}
    assert "fail_open" in patterns["EntitlementFailOpen"]
    assert "attention" in patterns["WebhookAttention"]
    assert "missing_table" in patterns["EntitlementRefusedByDatabase"]
    alarmed = {r["Properties"].get("MetricName") for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"EntitlementFailOpen", "WebhookAttention", "EntitlementRefusedByDatabase"} <= alarmed


def test_ses_may_send_as_the_address_or_its_domain_identity(template):
    """An address-only verified identity must not fail silently (issue 21)."""
    for condition, statement in statements(template, "SuccessRedirectFunction"):
        if statement.get("Sid") == "SendSignInLinks":
            assert condition == "HasRestoreSender"
            texts = json.dumps(statement["Resource"])
            assert "identity/${RestoreEmailFrom}" in texts
            assert '"Split"' in texts or "Fn::Split" in texts
            return
    raise AssertionError("no SendSignInLinks statement")


def test_abuse_limits_are_parameters_of_the_success_function(template):
    parameters = template["Parameters"]
    variables = template["Resources"]["SuccessRedirectFunction"]["Properties"]["Environment"]["Variables"]
    for variable, parameter, default in [
        ("DODO_API_CALLS_PER_MINUTE", "DodoApiCallsPerMinute", "60"),
        ("CHECKOUTS_PER_HOUR_PER_IP", "CheckoutsPerHourPerIp", "20"),
        ("RESTORE_EMAILS_PER_HOUR", "RestoreEmailsPerHour", "200"),
        ("CLIENT_IP_HEADER", "ClientIpHeader", ""),
    ]:
        assert variables[variable] == {"Ref": parameter}
        assert parameters[parameter]["Default"] == default


def test_the_default_execute_api_endpoint_can_be_turned_off(template):
    parameter = template["Parameters"]["DisableExecuteApiEndpoint"]
    assert parameter["AllowedValues"] == ["true", "false"] and parameter["Default"] == "false"
    assert template["Conditions"]["DisablesExecuteApi"] == {
        "Fn::Equals": [{"Ref": "DisableExecuteApiEndpoint"}, "true"]
    }
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["DisablesExecuteApi", True, False]}


def test_alarms_watch_ses_failures_dodo_errors_and_spent_budgets(template):
    resources = template["Resources"]
    filters = {
        r["Properties"]["MetricTransformations"][0]["MetricName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::MetricFilter"
    }
    expected = {
        "RestoreSesFailed": ['$.fields.outcome = "ses_failed"'],
        "DodoApiThrottledOrFailing": ["$.fields.dodo_status = 429", "$.fields.dodo_status >= 500"],
        "AbuseBudgetSpent": ['$.fields.outcome = "over_budget"'],
    }
    for metric, clauses in expected.items():
        assert filters[metric]["LogGroupName"] == {"Ref": "SuccessRedirectLogGroup"}, metric
        for clause in clauses:
            assert clause in filters[metric]["FilterPattern"], (metric, clause)
    alarms = {
        r["Properties"].get("MetricName"): r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    for metric in expected:
        assert alarms[metric]["AlarmActions"] == [{"Ref": "AlarmTopic"}], metric
