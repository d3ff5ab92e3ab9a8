"""The local cloud: moto's server plus AWS's SAM translator and the fidelity
fixes listed in shared/spec/local-cloud.md, applied at import time.

Usage: python server.py [--host 127.0.0.1] [--port 0] [--exit-on-stdin-eof] [--realistic]

Prints ``READY http://HOST:PORT`` on stdout once it accepts requests.

Every call is recorded as ``service:Action`` under the access key that signed
it; ``GET /_accel/calls/<access key>`` answers them as a JSON list, so a test
with its own key can count the calls a command made, and
``GET /_accel/throttled/<access key>`` lists the calls refused past a
quota, ``GET /_accel/faults/<access key>`` the faults injected (see "Faults"
below; ``POST`` there turns them on for one key). With
``--exit-on-stdin-eof`` it stops when its stdin closes, so a test process that
dies never leaves a server behind.
"""

import argparse
import base64
import copy
import inspect
import io
import json
import os
import random
import re
import socket
import sys
import binascii
import struct
import threading
import time
import uuid
import zipfile
from urllib.parse import parse_qs, unquote, urlparse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

from moto.apigateway import models as apigw_models  # noqa: E402
from moto.apigateway.exceptions import NoIntegrationDefined, NoMethodDefined  # noqa: E402
from moto.awslambda import models as lambda_models  # noqa: E402
from moto.awslambda import responses as lambda_responses  # noqa: E402
from moto.awslambda.exceptions import LambdaClientError  # noqa: E402
from moto.cloudformation import models as cfn_models  # noqa: E402
from moto.cloudformation import parsing as cfn_parsing  # noqa: E402
from moto.cloudformation import responses as cfn_responses  # noqa: E402
from moto.cloudformation import utils as cfn_utils  # noqa: E402
from moto.apigatewayv2.models import apigatewayv2_backends  # noqa: E402
from moto.core.common_models import CloudFormationModel  # noqa: E402
from moto.moto_server import werkzeug_app  # noqa: E402
from moto.logs.models import logs_backends  # noqa: E402
from moto.s3.models import s3_backends  # noqa: E402
from moto.xray import models as xray_models  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


# Fix 1: apply the SAM transform, which moto lacks.
class _NoManagedPolicies:
    def load(self):
        return {}


def _has_sam_transform(template):
    transform = template.get("Transform") if isinstance(template, dict) else None
    if isinstance(transform, list):
        return SAM_TRANSFORM in transform
    return transform == SAM_TRANSFORM


def sam_transform(template, parameters):
    if not _has_sam_transform(template):
        return template
    from samtranslator.translator.transform import transform

    return transform(copy.deepcopy(template), dict(parameters or {}), _NoManagedPolicies())


_stack_parse = cfn_models.Stack._parse_template


def _stack_parse_template(self):
    _stack_parse(self)
    self.template_dict = sam_transform(self.template_dict, getattr(self, "parameters", None))


cfn_models.Stack._parse_template = _stack_parse_template

# The Stack constructor parses its template before it stores its parameters:
# store them first so `!Ref Param` in Serverless properties resolves.
_stack_init = cfn_models.Stack.__init__
_stack_init_sig = inspect.signature(_stack_init)


def _stack_init_with_parameters(self, *args, **kwargs):
    bound = _stack_init_sig.bind(self, *args, **kwargs)
    self.parameters = bound.arguments.get("parameters") or {}
    _stack_init(self, *args, **kwargs)


cfn_models.Stack.__init__ = _stack_init_with_parameters

_stack_update = cfn_models.Stack.update


def _stack_update_with_parameters(self, *args, **kwargs):
    bound = inspect.signature(_stack_update).bind(self, *args, **kwargs)
    if bound.arguments.get("parameters"):
        self.parameters = bound.arguments["parameters"]
    return _stack_update(self, *args, **kwargs)


cfn_models.Stack.update = _stack_update_with_parameters

_changeset_parse = cfn_models.ChangeSet._parse_template


def _changeset_parse_template(self):
    _changeset_parse(self)
    self.template_dict = sam_transform(self.template_dict, getattr(self, "parameters", None))


cfn_models.ChangeSet._parse_template = _changeset_parse_template


# Fix 2: a REST API translated from SAM carries only a Body, no Name.
_restapi_from_cfn = apigw_models.RestAPI.create_from_cloudformation_json.__func__


def _restapi_create_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json.setdefault("Properties", {})
    if "Name" not in props:
        body = props.get("Body") if isinstance(props.get("Body"), dict) else {}
        props["Name"] = (body.get("info") or {}).get("title") or resource_name
    api = _restapi_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    api.accel_has_body = "Body" in props or "BodyS3Location" in props
    return api


apigw_models.RestAPI.create_from_cloudformation_json = classmethod(_restapi_create_from_cfn)


# Fix 3: moto ignores Body, so a deployment of a Body-defined API has no
# methods. Let such deployments through rather than import Swagger 2.0.
_create_deployment = apigw_models.APIGatewayBackend.create_deployment


def _create_deployment_relaxed(self, function_id, name, description="", stage_variables=None):
    try:
        return _create_deployment(self, function_id, name, description, stage_variables)
    except (NoMethodDefined, NoIntegrationDefined):
        api = self.get_rest_api(function_id)
        if not getattr(api, "accel_has_body", False):
            raise
        return api.create_deployment(name, description, stage_variables or {})


apigw_models.APIGatewayBackend.create_deployment = _create_deployment_relaxed


# Fix 4: a TemplateURL on a loopback endpoint is path-style.
_get_stack_from_s3_url = cfn_utils.get_stack_from_s3_url


def get_stack_from_s3_url(template_url, account_id, partition):
    host = urlparse(template_url).netloc
    if not host.split(":")[0].endswith("amazonaws.com"):
        from moto.s3.models import s3_backends

        bucket, key = urlparse(template_url).path.lstrip("/").split("/", 1)
        obj = s3_backends[account_id][partition].get_object(bucket, key)
        return obj.value.decode("utf-8")
    return _get_stack_from_s3_url(template_url, account_id, partition)


for module in (cfn_utils, cfn_models, cfn_responses):
    module.get_stack_from_s3_url = get_stack_from_s3_url


# Fix 5: `Fn::GetAtt NestedStack.Outputs.Name`.
def _stack_get_cfn_attribute(self, attribute_name):
    if attribute_name.startswith("Outputs."):
        wanted = attribute_name[len("Outputs."):]
        for output in self.outputs or []:
            if output["OutputKey"] == wanted:
                return output["OutputValue"]
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    raise UnformattedGetAttTemplateException()


cfn_models.Stack.get_cfn_attribute = _stack_get_cfn_attribute


# Extra fix: moto's short-form reader splits `!GetAtt A.Outputs.B` at every
# dot (CloudFormation splits at the first) and leaves list forms as raw nodes.
def yaml_tag_constructor(loader, tag, node):
    import yaml

    key = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
    if isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        value = loader.construct_scalar(node)
        if tag == "!GetAtt":
            value = value.split(".", 1)
    return {key: value}


for module in (cfn_utils, cfn_models, cfn_responses):
    module.yaml_tag_constructor = yaml_tag_constructor


# Fix 7: `Ref` to a layer version is its ARN.
lambda_models.LayerVersion.physical_resource_id = property(lambda self: self.arn)


# Extra fix: UpdateStack with `UsePreviousValue` for a parameter that took its
# default at creation raises KeyError (moto keeps only the values passed).
# Leaving such a parameter out lets the default apply again, which is what
# the previous value was.
def _resolve_update_parameters(self, instance, incoming_params):
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in incoming_params if "ParameterValue" in p}
    for p in incoming_params:
        key = p["ParameterKey"]
        if p.get("UsePreviousValue", False) and key in instance.parameters:
            parameters[key] = instance.parameters[key]
    return parameters


cfn_models.CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters


# Extra fix: CloudFormation refuses an update that changes nothing ("No
# updates are to be performed."); moto runs it.
_update_stack = cfn_models.CloudFormationBackend.update_stack


def _update_stack_unless_unchanged(self, name, template, role_arn, parameters, tags):
    stack = self.get_stack(name)
    resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
    if template == stack.template and resolved == stack.parameters and stack.status.endswith("_COMPLETE"):
        from moto.cloudformation.exceptions import ValidationError

        raise ValidationError(message="No updates are to be performed.")
    return _update_stack(self, name, template, role_arn, parameters, tags)


cfn_models.CloudFormationBackend.update_stack = _update_stack_unless_unchanged


# Strict: an update creates and updates resources in dependency order, as
# CloudFormation does ("CloudFormation updates resources in the order that
# their dependencies dictate": Ref, Fn::GetAtt, Fn::Sub and DependsOn).
# moto creates every added resource before it updates any existing one, so
# a new function reading a new output of an existing nested stack (a
# function gaining its auto dependency layer) failed, where AWS updates the
# nested stack first.
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}")


def _references(value, names):
    """The resources in `names` that `value` (a resource's JSON) refers to."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner.split(".", 1)[0] if isinstance(inner, str) else inner[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(_SUB_NAME.findall(text))
            elif key == "DependsOn":
                found.update([inner] if isinstance(inner, str) else inner)
            found |= _references(inner, names)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner, names)
    return found & names


def _in_dependency_order(names, resources):
    """`names` ordered so that each comes after those of them it refers to."""
    ordered, seen = [], set()

    def visit(name, path):
        if name in seen or name in path:
            return
        for dependency in sorted(_references(resources[name], names)):
            visit(dependency, path | {name})
        seen.add(name)
        ordered.append(name)

    for name in sorted(names):
        visit(name, frozenset())
    return ordered


def _update_in_dependency_order(self, template, parameters=None):
    actions = self.build_resource_diff(template, parameters)
    removed = actions["Remove"]
    # Removals first (as moto), retried past dependency violations.
    for _ in range(cfn_parsing.MAX_UPDATE_ATTEMPTS):
        for logical_name in list(removed):
            try:
                if logical_name in self._parsed_resources:
                    self._delete_resource(self._parsed_resources[logical_name], self._resource_json_map[logical_name])
            except Exception:  # noqa: BLE001 - a dependency violation: retried next pass
                continue
            removed.remove(logical_name)
        if not removed:
            break
    self._template = template
    if parameters:
        self.input_parameters = parameters
    self.load_mapping()
    self.load_parameters()
    self.load_conditions()
    self._resource_json_map = template["Resources"]
    added, modified = set(actions["Add"]), set(actions["Modify"])
    for logical_name in _in_dependency_order(added | modified, template["Resources"]):
        if logical_name in added:
            _ = self[logical_name]  # moto creates a resource when it is first looked up
        else:
            changed = cfn_parsing.parse_and_update_resource(
                logical_name,
                self._resource_json_map[logical_name],
                self,
                account_id=self._account_id,
                region_name=self._region_name,
            )
            # moto answers None for a type it cannot update (a REST API):
            # the resource stays as it was, and `Ref`s to it keep working.
            if changed is not None:
                self._parsed_resources[logical_name] = changed


cfn_parsing.ResourceMap.update = _update_in_dependency_order


# Extra fix: a function created through CloudFormation loses its `Layers`
# (moto copies a fixed list of properties, without them); UpdateStack keeps
# them. The auto dependency layer depends on it.
_function_from_cfn = lambda_models.LambdaFunction.create_from_cloudformation_json.__func__


def _function_from_cfn_with_layers(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    fn = _function_from_cfn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    layers = cloudformation_json.get("Properties", {}).get("Layers")
    if layers:
        fn.layers = fn._get_layers_data(layers)
    return fn


lambda_models.LambdaFunction.create_from_cloudformation_json = classmethod(_function_from_cfn_with_layers)


# Extra fix: an UpdateStack that changes a function's inline code
# (`Code.ZipFile`, SAM's InlineCode) crashes: moto zips the plain text on
# create but expects base64 on update.
_function_update_from_cfn = lambda_models.LambdaFunction.update_from_cloudformation_json.__func__


def _function_update_from_cfn_inline(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs):
    code = cloudformation_json.get("Properties", {}).get("Code", {})
    if isinstance(code.get("ZipFile"), str):
        plain = code["ZipFile"]
        code["ZipFile"] = base64.b64encode(cls._create_zipfile_from_plaintext_code(plain)).decode()
    return _function_update_from_cfn(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs)


lambda_models.LambdaFunction.update_from_cloudformation_json = classmethod(_function_update_from_cfn_inline)


# Extra fix: moto has no CloudFormation support for `AWS::ApiGatewayV2::Api`
# (what SAM makes of an HttpApi). This model creates the API and imports its
# Body or BodyS3Location; an update re-imports into the same API.
class HttpApiFromCloudFormation(CloudFormationModel):
    # moto files every model under the service named by its module.
    __module__ = "moto.apigatewayv2.cloudformation"

    def __init__(self, api, backend):
        self.api = api
        self.backend = backend

    @staticmethod
    def cloudformation_type():
        return "AWS::ApiGatewayV2::Api"

    @staticmethod
    def cloudformation_name_type():
        return "Name"

    @property
    def physical_resource_id(self):
        return self.api.api_id

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in ("ApiId", "ApiEndpoint")

    def get_cfn_attribute(self, attribute_name):
        if attribute_name == "ApiEndpoint":
            return self.api.api_endpoint
        return self.api.api_id

    @staticmethod
    def _body(properties, account_id):
        location = properties.get("BodyS3Location")
        if location:
            s3 = s3_backends[account_id]["global"]
            return s3.get_object(location["Bucket"], location["Key"]).value.decode()
        body = properties.get("Body")
        return json.dumps(body) if isinstance(body, dict) else body

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json.get("Properties", {})
        backend = apigatewayv2_backends[account_id][region_name]
        api = backend.create_api(
            api_key_selection_expression=None,
            cors_configuration=None,
            description=properties.get("Description"),
            disable_schema_validation=None,
            disable_execute_api_endpoint=properties.get("DisableExecuteApiEndpoint"),
            name=properties.get("Name") or resource_name,
            protocol_type=properties.get("ProtocolType", "HTTP"),
            route_selection_expression=None,
            tags=properties.get("Tags") or {},
            version=None,
        )
        body = cls._body(properties, account_id)
        if body:
            backend.reimport_api(api.api_id, body, False)
        return cls(api, backend)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        body = cls._body(cloudformation_json.get("Properties", {}), account_id)
        if body:
            original_resource.backend.reimport_api(original_resource.api.api_id, body, False)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        pass


# Strict: AutoPublishAlias. SAM turns it into an `AWS::Lambda::Version`
# (named by a hash of the code, kept on delete) and an `AWS::Lambda::Alias`
# pointing at it. moto has no CloudFormation model for the alias, and its
# version answers neither `Ref` (the version's ARN) nor `Fn::GetAtt
# .Version`, so a stack with AutoPublishAlias never finished creating.
_create_version = lambda_models.LambdaVersion.create_from_cloudformation_json.__func__


def _create_version_with_arn(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    version = _create_version(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    function = lambda_models.lambda_backends[account_id][region_name].get_function(
        cloudformation_json["Properties"]["FunctionName"]
    )
    version.arn = f"{function.function_arn}:{version.version}"
    return version


lambda_models.LambdaVersion.create_from_cloudformation_json = classmethod(_create_version_with_arn)
lambda_models.LambdaVersion.physical_resource_id = property(lambda self: self.arn)
lambda_models.LambdaVersion.has_cfn_attr = classmethod(lambda cls, attr: attr == "Version")
lambda_models.LambdaVersion.get_cfn_attribute = lambda self, attribute_name: str(self.version)


class LambdaAliasFromCloudFormation(CloudFormationModel):
    # moto files every model under the service named by its module.
    __module__ = "moto.awslambda.cloudformation"

    def __init__(self, alias, function_name):
        self.alias = alias
        self.function_name = function_name

    @staticmethod
    def cloudformation_type():
        return "AWS::Lambda::Alias"

    @staticmethod
    def cloudformation_name_type():
        return "Name"

    @property
    def physical_resource_id(self):
        return self.alias.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        backend = lambda_models.lambda_backends[account_id][region_name]
        alias = backend.create_alias(
            name=properties["Name"],
            function_name=properties["FunctionName"],
            function_version=str(properties["FunctionVersion"]),
            description=properties.get("Description", ""),
            routing_config=None,
        )
        return cls(alias, properties["FunctionName"])

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        properties = cloudformation_json["Properties"]
        original_resource.alias.update(properties.get("Description"), str(properties["FunctionVersion"]), None)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        properties = cloudformation_json["Properties"]
        lambda_models.lambda_backends[account_id][region_name].delete_alias(
            properties["Name"], properties["FunctionName"]
        )


# Extra fix: moto's GetTraceSummaries answers `"Users": {}` where the API has
# a list (strict SDKs refuse the whole answer) and spells IsPartial
# "IsParital".
_trace_summary = xray_models.SegmentCollection.summary


def _trace_summary_fixed(self, *args, **kwargs):
    result = _trace_summary(self, *args, **kwargs)
    for summary in result.get("TraceSummaries", []):
        summary["Users"] = []
        summary["IsPartial"] = summary.pop("IsParital", False)
    return result


xray_models.SegmentCollection.summary = _trace_summary_fixed


# Extra fix: ClientRequestToken, CloudFormation's idempotency token. AWS
# stamps the token of the CreateStack/UpdateStack call on every event of the
# operation it started (DescribeStackEvents returns it as
# ClientRequestToken), and a call retried with the token of the stack's last
# operation is the same request: CreateStack answers that stack's StackId
# instead of AlreadyExistsException, UpdateStack answers it without running
# the update again. moto ignores the token (its events carry none), so an SDK
# retry after a lost answer fails there where it succeeds on AWS.
_REQUEST_TOKEN = threading.local()
_add_stack_event = cfn_models.Stack._add_stack_event


def _add_stack_event_with_token(self, *args, **kwargs):
    _add_stack_event(self, *args, **kwargs)
    token = getattr(_REQUEST_TOKEN, "value", None)
    if token:
        self.events[-1].client_request_token = token


cfn_models.Stack._add_stack_event = _add_stack_event_with_token


def _idempotent_stack_call(call):
    def handle(self):
        token = self._get_param("ClientRequestToken")
        name = self._get_param("StackName")
        if token:
            for stack in self.cloudformation_backend.stacks.values():
                if name in (stack.name, stack.stack_id) and getattr(stack, "accel_request_token", None) == token:
                    return cfn_responses.ActionResult({"StackId": stack.stack_id})
        _REQUEST_TOKEN.value = token
        try:
            result = call(self)
        finally:
            _REQUEST_TOKEN.value = None
        if token:
            for stack in self.cloudformation_backend.stacks.values():
                if name in (stack.name, stack.stack_id):
                    stack.accel_request_token = token
        return result

    return handle


cfn_responses.CloudFormationResponse.create_stack = _idempotent_stack_call(
    cfn_responses.CloudFormationResponse.create_stack
)
cfn_responses.CloudFormationResponse.update_stack = _idempotent_stack_call(
    cfn_responses.CloudFormationResponse.update_stack
)


# Strict: Lambda applies a change asynchronously
# (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html and
# .../functions-states.html#functions-states-updating). After CreateFunction
# a function is `State: Pending`, then `Active`; after UpdateFunctionCode or
# UpdateFunctionConfiguration its `LastUpdateStatus` is `InProgress`, then
# `Successful` or `Failed`. Meanwhile another update, or a PublishVersion,
# answers 409 ResourceConflictException. moto applies every change at once,
# so a client that never waits passes here and fails on AWS. The change
# takes ACCEL_CLOUD_LAMBDA_UPDATE_SECONDS (0.3 s by default, AWS's typical
# 2 s with `scripts/local-cloud --realistic`). CloudFormation waits for its
# own changes to finish, so functions it creates or updates are not affected.
# Test knobs: a zip holding `.accel-cloud-fail-update` makes its update end
# `Failed`, with the file's text as `LastUpdateStatusReason`; an
# UpdateFunctionConfiguration whose environment sets
# ACCEL_CLOUD_UPDATE_SECONDS takes that long (a function kept busy on purpose).
LAMBDA_UPDATE_SECONDS = float(os.environ.get("ACCEL_CLOUD_LAMBDA_UPDATE_SECONDS", "0.3"))
# AWS's typical time for a function update to finish (1–3 s, Lambda's
# "function states" documentation and measurements of UpdateFunctionCode).
REALISTIC_LAMBDA_UPDATE_SECONDS = 2.0
FAIL_UPDATE_MARKER = ".accel-cloud-fail-update"
# Unqualified function ARN -> {"until", "kind" ("create"|"update"), "failure"}.
_LAMBDA_CHANGES = {}
_LAMBDA_CHANGES_LOCK = threading.Lock()


class ResourceConflict(LambdaClientError):
    code = 409

    def __init__(self, message):
        super().__init__("ResourceConflictException", message)


def _change_of(arn):
    with _LAMBDA_CHANGES_LOCK:
        change = _LAMBDA_CHANGES.get(arn)
    if change is None:
        return None, False
    return change, time.monotonic() < change["until"]


def _refuse_while_changing(fn):
    change, busy = _change_of(fn.function_arn)
    if not busy:
        return
    if change["kind"] == "create":
        raise ResourceConflict(
            "The operation cannot be performed at this time. The function is currently in the following state: Pending"
        )
    raise ResourceConflict(
        f"The operation cannot be performed at this time. An update is in progress for resource: {fn.function_arn}"
    )


def _start_change(fn, kind, failure=None, seconds=None):
    with _LAMBDA_CHANGES_LOCK:
        _LAMBDA_CHANGES[fn.function_arn] = {
            "until": time.monotonic() + (LAMBDA_UPDATE_SECONDS if seconds is None else seconds),
            "kind": kind,
            "failure": failure,
        }


def _failure_in_zip(body):
    encoded = body.get("ZipFile")
    if not encoded:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as archive:
            if FAIL_UPDATE_MARKER in archive.namelist():
                return archive.read(FAIL_UPDATE_MARKER).decode("utf-8", "replace").strip() or "update failed"
    except (zipfile.BadZipFile, ValueError):
        return None
    return None


_get_configuration = lambda_models.LambdaFunction.get_configuration


def _get_configuration_with_change(self, *args, **kwargs):
    config = _get_configuration(self, *args, **kwargs)
    if str(self.version) != "$LATEST":
        return config
    change, busy = _change_of(self.function_arn)
    if change is None:
        return config
    if change["kind"] == "create" and busy:
        config.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
    elif change["kind"] == "update" and busy:
        config.update(
            LastUpdateStatus="InProgress",
            LastUpdateStatusReason="The function is being updated.",
            LastUpdateStatusReasonCode="InProgress",
        )
    elif change["kind"] == "update" and change["failure"]:
        config.update(
            LastUpdateStatus="Failed",
            LastUpdateStatusReason=change["failure"],
            LastUpdateStatusReasonCode="InvalidCode",
        )
    return config


lambda_models.LambdaFunction.get_configuration = _get_configuration_with_change


# Strict: UpdateFunctionConfiguration applies every field it takes, within
# Lambda's limits
# (https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html,
# https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html).
# moto drops EphemeralStorage, TracingConfig and LoggingConfig (it has no
# LoggingConfig at all), and takes any MemorySize or Timeout, so a hotswap
# of them would pass here and change nothing. A function's LoggingConfig is
# `{LogFormat: Text, LogGroup: /aws/lambda/<name>}` until set.
LAMBDA_LIMITS = {"MemorySize": (128, 10240), "Timeout": (1, 900)}
_update_configuration = lambda_models.LambdaFunction.update_configuration
_get_configuration_changing = lambda_models.LambdaFunction.get_configuration


def _logging_of(fn):
    default = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.function_name}"}
    return {**default, **(getattr(fn, "accel_logging_config", None) or {})}


def _update_configuration_fully(self, config_updates):
    for key, (low, high) in LAMBDA_LIMITS.items():
        value = config_updates.get(key)
        if value is not None and not low <= int(value) <= high:
            raise LambdaClientError(
                "InvalidParameterValueException",
                f"1 validation error detected: Value '{value}' at '{key[0].lower() + key[1:]}' failed to satisfy constraint: Member must have value between {low} and {high}",
            )
    if "EphemeralStorage" in config_updates:
        self.ephemeral_storage = config_updates["EphemeralStorage"]["Size"]
    if "TracingConfig" in config_updates:
        self.tracing_config = {"Mode": config_updates["TracingConfig"].get("Mode", "PassThrough")}
    if "LoggingConfig" in config_updates:
        self.accel_logging_config = {k: v for k, v in config_updates["LoggingConfig"].items() if v}
    return _update_configuration(self, config_updates)


def _get_configuration_with_logging(self, *args, **kwargs):
    config = _get_configuration_changing(self, *args, **kwargs)
    config["LoggingConfig"] = _logging_of(self)
    return config


_function_init = lambda_models.LambdaFunction.__init__


def _function_init_with_logging(self, account_id, spec, *args, **kwargs):
    _function_init(self, account_id, spec, *args, **kwargs)
    self.accel_logging_config = {k: v for k, v in (spec.get("LoggingConfig") or {}).items() if v}


lambda_models.LambdaFunction.__init__ = _function_init_with_logging
lambda_models.LambdaFunction.update_configuration = _update_configuration_fully
lambda_models.LambdaFunction.get_configuration = _get_configuration_with_logging


def _function_of(response, path_index):
    name = unquote(response.path.rsplit("/", path_index)[-path_index])
    return response.backend.get_function(name, None)


def _create_function_async(call):
    def handle(self):
        result = call(self)
        name = self.json_body["FunctionName"].rsplit(":", 1)[-1]
        _start_change(self.backend.get_function(name, None), "create")
        status, headers, body = result
        config = json.loads(body)
        config.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
        return status, headers, json.dumps(config)

    return handle


def _update_async(call, path_index):
    def handle(self):
        fn = _function_of(self, path_index)
        _refuse_while_changing(fn)
        result = call(self)
        body = self.json_body or {}
        seconds = ((body.get("Environment") or {}).get("Variables") or {}).get("ACCEL_CLOUD_UPDATE_SECONDS")
        _start_change(fn, "update", _failure_in_zip(body), float(seconds) if seconds else None)
        status, headers, body = result
        if status == 200:
            config = json.loads(body)
            config.update(LastUpdateStatus="InProgress", LastUpdateStatusReasonCode="InProgress")
            body = json.dumps(config)
        return status, headers, body

    return handle


def _publish_when_idle(call):
    def handle(self):
        _refuse_while_changing(_function_of(self, 2))
        return call(self)

    return handle


lambda_responses.LambdaResponse.create_function = _create_function_async(lambda_responses.LambdaResponse.create_function)
lambda_responses.LambdaResponse.update_function_code = _update_async(
    lambda_responses.LambdaResponse.update_function_code, 2
)
lambda_responses.LambdaResponse.update_function_configuration = _update_async(
    lambda_responses.LambdaResponse.update_function_configuration, 2
)
lambda_responses.LambdaResponse.publish_version = _publish_when_idle(lambda_responses.LambdaResponse.publish_version)


# Strict: CloudFormation reports each resource and rolls a failed change
# back (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html,
# .../stack-failure-options.html). Every resource gets its own
# `*_IN_PROGRESS` / `*_COMPLETE` events, in the order the resources are
# made (dependencies first); a resource that fails gets `CREATE_FAILED` or
# `UPDATE_FAILED` with the reason, and the stack rolls back: a failed
# creation ends `ROLLBACK_COMPLETE` (such a stack can only be deleted), a
# failed update restores the previous template and ends
# `UPDATE_ROLLBACK_COMPLETE`. moto recorded stack events only, and a
# failing resource left the stack `*_IN_PROGRESS` for ever (or broken).
# A nested stack that fails makes its parent's resource fail in turn.
#
# What fails: what AWS's resource handlers reject. Lambda's `MemorySize`
# must lie in 128–10240 MB; a function outside it fails with Lambda's
# validation message (the documented way for tests to make a deploy fail).
_IN_CHANGE = threading.local()  # .stacks: the stacks being changed, innermost last


class ResourceFailure(Exception):
    """A resource handler refused a resource: `reason` is what CloudFormation reports."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _changing():
    if not hasattr(_IN_CHANGE, "stacks"):
        _IN_CHANGE.stacks = []
    return _IN_CHANGE.stacks


def _resource_event(stack, logical_id, resource_type, status, physical_id="", reason=None):
    event = cfn_models.Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    token = getattr(_REQUEST_TOKEN, "value", None)
    if token:
        event.client_request_token = token
    stack.events.append(event)


def _reason(error):
    if isinstance(error, ResourceFailure):
        return error.reason
    return f"Internal Failure: {error}"


def _with_events(change, action):
    """Wraps moto's parse_and_{create,update}_resource to report the resource."""

    def handle(logical_id, resource_json, resources_map, *args, **kwargs):
        stack = _changing()[-1] if _changing() else None
        resource_type = resource_json.get("Type", "") if isinstance(resource_json, dict) else ""
        try:
            resource = change(logical_id, resource_json, resources_map, *args, **kwargs)
        except Exception as error:
            if stack is not None and not getattr(error, "accel_reported", False):
                _resource_event(stack, logical_id, resource_type, f"{action}_IN_PROGRESS")
                _resource_event(stack, logical_id, resource_type, f"{action}_FAILED", reason=_reason(error))
                error.accel_reported = True
                error.accel_failed = logical_id
            raise
        if stack is not None and resource is not None:
            physical = getattr(resource, "physical_resource_id", None) or logical_id
            _resource_event(stack, logical_id, resource_type, f"{action}_IN_PROGRESS", physical)
            _resource_event(stack, logical_id, resource_type, f"{action}_COMPLETE", physical)
        return resource

    return handle


cfn_parsing.parse_and_create_resource = _with_events(cfn_parsing.parse_and_create_resource, "CREATE")
cfn_parsing.parse_and_update_resource = _with_events(cfn_parsing.parse_and_update_resource, "UPDATE")


class _NoOutputs(dict):
    """The outputs (none) of a stack whose creation rolled back."""

    exports = []


def _nested_failure(stack, what):
    return ResourceFailure(f"Embedded stack {stack.stack_id} was not successfully {what}.")


_create_resources = cfn_models.Stack.create_resources


def _create_resources_or_roll_back(self):
    nested = bool(_changing())
    _changing().append(self)
    try:
        _create_resources(self)
    except Exception as error:
        failed = getattr(error, "accel_failed", "a resource")
        self._add_stack_event(
            "ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to create: [{failed}]. Rollback requested by user.",
        )
        try:
            self.resource_map.delete()
        except Exception:  # noqa: BLE001 - what cannot be deleted stays, as after a failed rollback
            pass
        # A rolled-back creation has no resources and no outputs left.
        self.resource_map._resource_json_map = {}
        self.output_map = _NoOutputs()
        self._add_stack_event("ROLLBACK_COMPLETE")
        self.status = "ROLLBACK_COMPLETE"
        if nested:
            raise _nested_failure(self, "created") from error
    finally:
        _changing().pop()


cfn_models.Stack.create_resources = _create_resources_or_roll_back
_stack_update_strict = cfn_models.Stack.update


def _update_or_roll_back(self, template, *args, **kwargs):
    nested = bool(_changing())
    previous_template, previous_parameters = self.template, dict(self.parameters or {})
    _changing().append(self)
    try:
        _stack_update_strict(self, template, *args, **kwargs)
    except Exception as error:
        failed = getattr(error, "accel_failed", "a resource")
        self._add_stack_event(
            "UPDATE_ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to update: [{failed}].",
        )
        self.template = previous_template
        self._parse_template()
        try:
            self.resource_map.update(self.template_dict, previous_parameters)
        except Exception:  # noqa: BLE001 - a rollback that cannot restore everything still ends
            pass
        self.output_map = self._create_output_map()
        self._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        self.status = "UPDATE_ROLLBACK_COMPLETE"
        if nested:
            raise _nested_failure(self, "updated") from error
    finally:
        _changing().pop()


cfn_models.Stack.update = _update_or_roll_back
_update_stack_checked = cfn_models.CloudFormationBackend.update_stack


def _update_stack_unless_rolled_back(self, name, *args, **kwargs):
    stack = self.get_stack(name)
    if stack.status == "ROLLBACK_COMPLETE":
        from moto.cloudformation.exceptions import ValidationError

        raise ValidationError(message=f"Stack:{stack.stack_id} is in ROLLBACK_COMPLETE state and can not be updated.")
    return _update_stack_checked(self, name, *args, **kwargs)


cfn_models.CloudFormationBackend.update_stack = _update_stack_unless_rolled_back


def _check_function(properties):
    memory = properties.get("MemorySize")
    if memory is None:
        return
    memory = int(memory)
    bound = "greater than or equal to 128" if memory < 128 else "less than or equal to 10240"
    if memory < 128 or memory > 10240:
        message = (
            f"1 validation error detected: Value '{memory}' at 'memorySize' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
        raise ResourceFailure(f'Resource handler returned message: "{message}" (HandlerErrorCode: InvalidRequest)')


_function_create_checked = lambda_models.LambdaFunction.create_from_cloudformation_json.__func__
_function_update_checked = lambda_models.LambdaFunction.update_from_cloudformation_json.__func__


def _create_function_checked(cls, resource_name, cloudformation_json, *args, **kwargs):
    _check_function(cloudformation_json.get("Properties", {}))
    return _function_create_checked(cls, resource_name, cloudformation_json, *args, **kwargs)


def _update_function_checked(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs):
    _check_function(cloudformation_json.get("Properties", {}))
    return _function_update_checked(cls, original_resource, new_resource_name, cloudformation_json, *args, **kwargs)


lambda_models.LambdaFunction.create_from_cloudformation_json = classmethod(_create_function_checked)
lambda_models.LambdaFunction.update_from_cloudformation_json = classmethod(_update_function_checked)


# Strict: StartLiveTail, which moto lacks
# (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartLiveTail.html),
# answered over AWS's event-stream protocol
# (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html:
# prelude, headers, payload, CRC32s): a `sessionStart` event, then a
# `sessionUpdate` every second with the events CloudWatch Logs received since
# (an empty one is the heartbeat), until the session ends with a
# `SessionTimeoutException` after LIVE_TAIL_SECONDS (AWS: 3 hours). At most
# 10 log groups per session, as AWS.
LIVE_TAIL_SECONDS = float(os.environ.get("ACCEL_CLOUD_LIVE_TAIL_SECONDS", str(3 * 3600)))
LIVE_TAIL_MAX_GROUPS = 10

# Strict: concurrent live tail sessions. CloudWatch Logs allows 15 live tail
# sessions at once per account and Region by default ("Live Tail concurrent
# sessions limit" on https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html);
# StartLiveTail's errors include LimitExceededException
# (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartLiveTail.html),
# which is how users report AWS refusing live tails past its limits: 400
# `LimitExceededException: Rate exceeded`
# (https://github.com/DefangLabs/defang/issues/1694). The patch above opened
# any number of sessions, so a client opening one per ten groups over
# hundreds of groups passed here and failed on AWS. Per access key here (each
# test is its own account); a session counts from its start until its stream
# ends (it times out, or the client goes away). A refused start is listed
# with the throttled calls (`GET /_accel/throttled/<key>`). A test sets its
# own limit and session length with `POST /_accel/quotas/<key>`
# ({"logs:LiveTailSessions": 2, "logs:LiveTailSeconds": 600}).
LIVE_TAIL_MAX_SESSIONS = 15
_LIVE_SESSIONS = {}


def _live_tail_session(key):
    """Counts a new session of `key`; None when its sessions are all in use,
    else a function that ends it (once)."""
    limit = int(_QUOTA_OVERRIDES.get(key, {}).get("logs:LiveTailSessions", LIVE_TAIL_MAX_SESSIONS))
    with CALLS_LOCK:
        if _LIVE_SESSIONS.get(key, 0) >= limit:
            THROTTLED.setdefault(key, []).append("logs:StartLiveTail")
            return None
        _LIVE_SESSIONS[key] = _LIVE_SESSIONS.get(key, 0) + 1
    ended = []

    def end():
        with CALLS_LOCK:
            if not ended:
                ended.append(True)
                _LIVE_SESSIONS[key] -= 1

    return end


def _event_stream_message(headers, payload):
    encoded = b""
    for name, value in headers.items():
        name, value = name.encode(), value.encode()
        encoded += struct.pack("B", len(name)) + name + b"\x07" + struct.pack(">H", len(value)) + value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _live_tail_event(event_type, body):
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return _event_stream_message(headers, json.dumps(body).encode())


def _json_error(start_response, status, code, message):
    body = json.dumps({"__type": code, "message": message}).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


def _live_tail(environ, start_response, key):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
    identifiers = request.get("logGroupIdentifiers") or []
    if not identifiers or len(identifiers) > LIVE_TAIL_MAX_GROUPS:
        return _json_error(
            start_response,
            "400 Bad Request",
            "ValidationException",
            "1 validation error detected: Value at 'logGroupIdentifiers' failed to satisfy constraint: "
            f"Member must have length less than or equal to {LIVE_TAIL_MAX_GROUPS}",
        )
    region = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = region.group(0).split("/")[2] if region else os.environ["AWS_DEFAULT_REGION"]
    backend = logs_backends["123456789012"][region]
    names = {identifier: identifier.split(":log-group:", 1)[-1] for identifier in identifiers}
    missing = [name for name in names.values() if name not in backend.groups]
    if missing:
        return _json_error(
            start_response, "400 Bad Request", "ResourceNotFoundException", f"Log group {missing[0]} does not exist"
        )
    pattern = request.get("logEventFilterPattern") or ""
    seconds = float(_QUOTA_OVERRIDES.get(key, {}).get("logs:LiveTailSeconds", LIVE_TAIL_SECONDS))
    end_session = _live_tail_session(key)
    if end_session is None:
        return _json_error(start_response, "400 Bad Request", "LimitExceededException", "Rate exceeded")

    def stream():
        try:
            yield from session()
        finally:
            end_session()

    def session():
        started = time.time() * 1000
        seen = set()
        yield _live_tail_event(
            "sessionStart",
            {
                "requestId": str(uuid.uuid4()),
                "sessionId": str(uuid.uuid4()),
                "logGroupIdentifiers": identifiers,
                "logEventFilterPattern": pattern,
            },
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            results = []
            for identifier, name in names.items():
                group = backend.groups.get(name)
                for stream_name, log_stream in list(group.streams.items()) if group else []:
                    for event in list(log_stream.events):
                        key = (identifier, stream_name, event.event_id)
                        if event.ingestion_time < started or key in seen or (pattern and pattern not in event.message):
                            continue
                        seen.add(key)
                        results.append(
                            {
                                "logStreamName": stream_name,
                                "logGroupIdentifier": identifier,
                                "message": event.message,
                                "timestamp": event.timestamp,
                                "ingestionTime": event.ingestion_time,
                            }
                        )
            results.sort(key=lambda r: r["timestamp"])
            yield _live_tail_event("sessionUpdate", {"sessionMetadata": {"sampled": False}, "sessionResults": results})
        # Over before the client hears so, as on AWS: it may open the next one at once.
        end_session()
        headers = {
            ":message-type": "exception",
            ":exception-type": "SessionTimeoutException",
            ":content-type": "application/json",
        }
        yield _event_stream_message(headers, json.dumps({"message": "Session timed out"}).encode())

    start_response("200 OK", [("Content-Type", "application/vnd.amazon.eventstream")])
    return stream()


# Strict: X-Ray with Transaction Search
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Transaction-Search.html):
# UpdateTraceSegmentDestination/GetTraceSegmentDestination, which moto
# lacks, and once segments go to CloudWatch Logs, full traces come only
# through StartTraceRetrieval + ListRetrievedTraces: BatchGetTraces leaves
# them unprocessed. The destination is the account's (one for every access
# key, as on AWS); it starts as X-Ray.
_TRACE_DESTINATION = {"value": "XRay"}
_RETRIEVALS = {}


def _json_answer(start_response, body, status="200 OK"):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _xray_backend(environ):
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = found.group(0).split("/")[2] if found else os.environ["AWS_DEFAULT_REGION"]
    return xray_models.xray_backends["123456789012"][region]


def _xray_transaction_search(environ, start_response):
    """Answers the Transaction Search calls; None for every other X-Ray call."""
    path = environ.get("PATH_INFO", "")
    if path not in ("/GetTraceSegmentDestination", "/UpdateTraceSegmentDestination", "/StartTraceRetrieval",
                    "/ListRetrievedTraces", "/Traces"):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    request = json.loads(raw or b"{}")
    destination = _TRACE_DESTINATION["value"]
    if path == "/GetTraceSegmentDestination":
        return _json_answer(start_response, {"Destination": destination, "Status": "ACTIVE"})
    if path == "/UpdateTraceSegmentDestination":
        _TRACE_DESTINATION["value"] = request.get("Destination", "XRay")
        return _json_answer(start_response, {"Destination": _TRACE_DESTINATION["value"], "Status": "ACTIVE"})
    if path == "/Traces":
        if destination != "CloudWatchLogs":
            return None
        return _json_answer(start_response, {"Traces": [], "UnprocessedTraceIds": request.get("TraceIds", [])})
    if destination != "CloudWatchLogs":
        message = "Trace retrieval needs Transaction Search: set the trace segment destination to CloudWatchLogs"
        return _json_answer(start_response, {"__type": "InvalidRequestException", "Message": message}, "400 Bad Request")
    if path == "/StartTraceRetrieval":
        token = str(uuid.uuid4())
        _RETRIEVALS[token] = list(request.get("TraceIds", []))
        return _json_answer(start_response, {"RetrievalToken": token})
    trace_ids = _RETRIEVALS.get(request.get("RetrievalToken"))
    if trace_ids is None:
        return _json_answer(
            start_response, {"__type": "ResourceNotFoundException", "Message": "Retrieval token not found"},
            "404 Not Found",
        )
    found = _xray_backend(environ).get_trace_ids(trace_ids)
    traces = [
        {
            "Id": trace["Id"],
            "Duration": trace["Duration"],
            "Spans": [{"Id": segment["Id"], "Document": segment["Document"]} for segment in trace["Segments"]],
        }
        for trace in found["Traces"]
    ]
    return _json_answer(start_response, {"RetrievalStatus": "COMPLETE", "TraceFormat": "XRAY", "Traces": traces})


# Strict: AWS's published API rate quotas. Past a quota AWS refuses the
# call with the service's own throttling error, which the SDKs retry with
# backoff. The quotas are per account and Region; here per access key, as
# each test is its own account. Each quota is a token bucket holding one
# second's worth of calls (or the documented burst). ACCEL_CLOUD_THROTTLE=0
# turns them all off.
THROTTLE = os.environ.get("ACCEL_CLOUD_THROTTLE", "1") != "0"

# Lambda (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#api-requests):
# GetFunction 100 requests per second; every other control-plane call (all
# but invocations, GetFunction and GetPolicy) 15 per second, shared. Past
# them 429 TooManyRequestsException.
LAMBDA_QUOTAS = {"GetFunction": 100.0, "control-plane": 15.0}

# API Gateway, "API Gateway quotas for creating, deploying and managing an
# API" (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html):
# fixed per-account rates of some actions, and the row "Total operations"
# (10 requests per second, a burst of 40) that every management call counts
# against. Past them 429 TooManyRequestsException.
# Action: (requests, per seconds).
APIGATEWAY_QUOTAS = {
    "CreateDeployment": (1, 5.0),
    "CreateRestApi": (1, 3.0),  # Regional or private API
    "CreateResource": (5, 1.0),
    "DeleteResource": (5, 1.0),
    "DeleteRestApi": (1, 30.0),
    "GetResources": (5, 2.0),
    "PutRestApi": (1, 1.0),
}
APIGATEWAY_TOTAL = (10.0, 40.0)  # rate, burst

# CloudWatch Logs quotas
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html,
# the per-account transactions per second of the calls accel and the tests
# make; PutLogEvents' 1500 is US East (N. Virginia)'s). Past them 400
# ThrottlingException.
LOGS_QUOTAS = {
    "FilterLogEvents": 5.0,
    "StartLiveTail": 5.0,
    "GetLogEvents": 10.0,
    "DescribeLogGroups": 5.0,
    "DescribeLogStreams": 5.0,
    "CreateLogStream": 50.0,
    "PutLogEvents": 1500.0,
}

# CloudFormation publishes no API rate quotas (its quotas page,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html,
# lists template and stack limits only), so none applies by default. A test
# sets rates of its own with `POST /_accel/quotas/<access key>`
# ({"cloudformation:DescribeStacks": 2}, any service) to meet CloudFormation's
# answer past a quota: 400 Throttling, "Rate exceeded", in the query
# protocol's ErrorResponse (as AWS answers it:
# https://repost.aws/knowledge-center/cloudformation-rate-exceeded-error,
# https://github.com/aws/aws-cli/issues/2948).
_QUOTA_OVERRIDES = {}

_BUCKETS = {}
_BUCKETS_LOCK = threading.Lock()
THROTTLED = {}


def _lambda_quota(method, path):
    """The quota a Lambda request counts against, or None (invocations, GetPolicy)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 4 and parts[1] == "functions" and parts[3] in ("invocations", "invoke-async", "policy"):
        return None
    if method == "GET" and len(parts) == 3 and parts[1] == "functions":
        return "GetFunction"
    return "control-plane"


def _apigateway_action(method, path):
    """The API Gateway action of a REST API management request, when it has a quota of its own."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] != "restapis":
        return None
    shapes = {
        ("POST", 1): "CreateRestApi",
        ("DELETE", 2): "DeleteRestApi",
        ("PUT", 2): "PutRestApi",
    }
    if len(parts) in (1, 2):
        return shapes.get((method, len(parts)))
    if parts[2] == "deployments" and method == "POST" and len(parts) == 3:
        return "CreateDeployment"
    if parts[2] == "resources":
        if len(parts) == 3 and method == "GET":
            return "GetResources"
        if len(parts) == 4:
            return {"POST": "CreateResource", "DELETE": "DeleteResource"}.get(method)
    return None


def _quotas(key, service, action, environ):
    """The buckets a call takes a token from: [(bucket, rate per second, burst)]."""
    overrides = _QUOTA_OVERRIDES.get(key, {})
    name = f"{service}:{action}"
    if name in overrides:
        rate = float(overrides[name])
        return [(name, rate, max(1.0, rate))]
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    if service == "lambda":
        # Lambda's REST paths name the function: a test lowers a whole quota
        # (`lambda:control-plane`, `lambda:GetFunction`) instead.
        quota = _lambda_quota(method, path)
        rate = float(overrides.get(f"lambda:{quota}", LAMBDA_QUOTAS.get(quota, 0)))
        return [] if quota is None else [(f"lambda:{quota}", rate, max(1.0, rate))]
    if service == "apigateway":
        buckets = [("apigateway:total", *APIGATEWAY_TOTAL)]
        own = _apigateway_action(method, path)
        if own:
            requests, seconds = APIGATEWAY_QUOTAS[own]
            buckets.append((f"apigateway:{own}", requests / seconds, float(requests)))
        return buckets
    if service == "logs" and action in LOGS_QUOTAS:
        return [(name, LOGS_QUOTAS[action], LOGS_QUOTAS[action])]
    return []


def _take_tokens(key, buckets):
    """One token from each of `buckets` (all or none); False when one is empty."""
    now = time.monotonic()
    with _BUCKETS_LOCK:
        levels = {}
        for bucket, rate, burst in buckets:
            tokens, last = _BUCKETS.get((key, bucket), (burst, now))
            levels[bucket] = min(burst, tokens + (now - last) * rate)
        allowed = all(tokens >= 1 for tokens in levels.values())
        for bucket, tokens in levels.items():
            _BUCKETS[(key, bucket)] = (tokens - 1 if allowed else tokens, now)
        return allowed


# The query protocol's services answer errors as an XML ErrorResponse.
_QUERY_SERVICES = ("cloudformation", "sts", "iam", "sqs", "sns", "ec2")


def _service_error(start_response, service, status, code, message, headers=()):
    """An error in `service`'s own wire format (query XML, S3 XML or JSON)."""
    request_id = str(uuid.uuid4())
    if service in _QUERY_SERVICES:
        kind = "Receiver" if status.startswith("5") else "Sender"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        content_type = "text/xml"
    elif service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        content_type = "application/xml"
    else:
        body = json.dumps({"__type": code, "message": message})
        content_type = "application/json" if service in ("lambda", "apigateway") else "application/x-amz-json-1.1"
    data = body.encode()
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(data))),
            *headers,
        ],
    )
    return [data]


def _throttled(environ, start_response, key, service, action):
    if not THROTTLE:
        return None
    buckets = _quotas(key, service, action, environ)
    if not buckets or _take_tokens(key, buckets):
        return None
    with CALLS_LOCK:
        THROTTLED.setdefault(key, []).append(f"{service}:{action}")
    if service == "lambda":
        body = json.dumps({"__type": "TooManyRequestsException", "message": "Rate Exceeded.", "retryAfterSeconds": "1"})
        start_response(
            "429 Too Many Requests",
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "TooManyRequestsException"),
                ("Retry-After", "1"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body.encode()]
    if service == "apigateway":
        return _service_error(
            start_response, service, "429 Too Many Requests", "TooManyRequestsException", "Too Many Requests",
            [("Retry-After", "1")],
        )
    if service in _QUERY_SERVICES:
        return _service_error(start_response, service, "400 Bad Request", "Throttling", "Rate exceeded")
    return _service_error(start_response, service, "400 Bad Request", "ThrottlingException", "Rate exceeded")


# Faults, for tests: a fraction of AWS requests answered 500 InternalFailure,
# 503 ServiceUnavailable, or with the connection closed before any answer
# (AWS documents all three as transient, to be retried with backoff:
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
# A fault strikes before the call reaches the cloud, so a faulted call
# changes nothing. ACCEL_CLOUD_FAULTS=<fraction> applies to every access key
# (ACCEL_CLOUD_FAULTS_SEED makes the draws repeatable); a test turns faults on
# for its own key with `POST /_accel/faults/<access key>`
# ({"fraction": 0.2, "kinds": ["500", "503", "reset"], "seed": 1}; optional
# "actions": only calls of these actions fault, "count": at most this many
# faults in all), and `GET /_accel/faults/<access key>` lists the faults it
# met. The harness' `/_accel/` endpoints never fault.
FAULT_KINDS = ("500", "503", "reset")
FAULTS_SEED = os.environ.get("ACCEL_CLOUD_FAULTS_SEED", "0")
_DEFAULT_FAULTS = {"fraction": float(os.environ.get("ACCEL_CLOUD_FAULTS", "0")), "kinds": list(FAULT_KINDS)}
_FAULT_SETTINGS = {}
_FAULT_DRAWS = {}
FAULTED = {}


def _fault(environ, start_response, key, service, action):
    settings = _FAULT_SETTINGS.get(key, _DEFAULT_FAULTS)
    if settings["fraction"] <= 0 or action not in settings.get("actions", [action]):
        return None
    with CALLS_LOCK:
        if len(FAULTED.get(key, [])) >= settings.get("count", float("inf")):
            return None
        # A key's own seed gives it the same draws every run; otherwise each
        # key draws from a sequence of its own.
        seed = str(settings["seed"]) if "seed" in settings else f"{FAULTS_SEED}:{key}"
        draws = _FAULT_DRAWS.setdefault(key, random.Random(seed))
        if draws.random() >= settings["fraction"]:
            return None
        kind = draws.choice(settings["kinds"])
        FAULTED.setdefault(key, []).append(f"{kind} {service}:{action}")
    if kind == "500":
        return _service_error(start_response, service, "500 Internal Server Error", "InternalFailure",
                              "We encountered an internal error. Please try again.")
    if kind == "503":
        return _service_error(start_response, service, "503 Service Unavailable", "ServiceUnavailable",
                              "Service is unavailable. Please try again.")
    # The connection closes with no answer: werkzeug takes the error for a
    # client that went away and writes nothing more.
    connection = environ["werkzeug.socket"]
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("fault: connection dropped")


def _harness_settings(environ, start_response, path):
    """`POST /_accel/faults/<key>` and `POST /_accel/quotas/<key>`: a test's own settings."""
    for prefix, table in (("/_accel/faults/", _FAULT_SETTINGS), ("/_accel/quotas/", _QUOTA_OVERRIDES)):
        if path.startswith(prefix):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            settings = json.loads(environ["wsgi.input"].read(length) or b"{}")
            key = path[len(prefix):]
            with CALLS_LOCK:
                if table is _FAULT_SETTINGS:
                    settings = {"kinds": list(FAULT_KINDS), **settings}
                    _FAULT_DRAWS.pop(key, None)
                table[key] = settings
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
    return None


# Call log for tests: `service:Action` per access key.
CALLS = {}
CALLS_LOCK = threading.Lock()
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/")
_dispatch = werkzeug_app.DomainDispatcherApplication.__call__


def _action(environ, service):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


def _recording_dispatch(self, environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/_accel/") and environ.get("REQUEST_METHOD") == "POST":
        answered = _harness_settings(environ, start_response, path)
        if answered is not None:
            return answered
    for prefix, log in (("/_accel/calls/", CALLS), ("/_accel/throttled/", THROTTLED), ("/_accel/faults/", FAULTED)):
        if path.startswith(prefix):
            with CALLS_LOCK:
                body = json.dumps(log.get(path[len(prefix):], [])).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found:
        key, service = found.groups()
        action = _action(environ, service)
        with CALLS_LOCK:
            CALLS.setdefault(key, []).append(f"{service}:{action}")
        refused = _fault(environ, start_response, key, service, action)
        if refused is None:
            refused = _throttled(environ, start_response, key, service, action)
        if refused is not None:
            return refused
    if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".StartLiveTail"):
        return _live_tail(environ, start_response, found.group(1) if found else "")
    if found and found.group(2) == "xray":
        answered = _xray_transaction_search(environ, start_response)
        if answered is not None:
            return answered
    return _dispatch(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _recording_dispatch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="AWS's typical durations (a Lambda change takes 2 s) instead of the tests' short ones",
    )
    args = parser.parse_args()
    if args.realistic:
        global LAMBDA_UPDATE_SECONDS
        LAMBDA_UPDATE_SECONDS = REALISTIC_LAMBDA_UPDATE_SECONDS

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"READY http://{host}:{port}", flush=True)

    stop = threading.Event()
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
