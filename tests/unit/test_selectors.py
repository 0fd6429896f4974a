"""Label and field selectors: the Kubernetes string syntax, semantics and errors."""

from __future__ import annotations

import pytest

from mkube.api.selectors import (
    Selector,
    format_labels,
    label_selector_matches,
    parse_field_selector,
    parse_selector,
    selector_from_label_selector,
    selector_from_set,
    selector_to_string,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod", "replicas": "3", "empty": ""}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app = web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),  # != matches objects without the label
    ("app=web,tier=frontend", True),
    ("app=web,tier=backend", False),
    ("env in (prod,staging)", True),
    ("env in ( staging , dev )", False),
    ("env notin (staging)", True),
    ("env notin (prod, staging)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("replicas>2", True),
    ("replicas<2", False),
    ("app>2", False),  # not an integer label value
    ("empty=", True),
    ("empty in ()", True),  # `()` is the set holding the empty string, as in Kubernetes
    ("  app=web ,  env in (prod) , !gone  ", True),
    ("example.com/role", False),
])
def test_match(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(("selector", "message"), [
    ("app=web,", "expected: identifier after ','"),
    ("a b", "found 'b', expected: =, !=, ==, in, notin, >, <"),
    ("a in x", "expected: '('"),
    ("a in (x", "expected: ',', ')' or identifier"),
    ("a=(", "found '(', expected: identifier"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("!a=b", "expected: ',' or 'end of string'"),
    ("a=b c", "expected: ',' or 'end of string'"),
    ("bad key!", "expected"),
    ("-a=b", "unable to parse requirement"),
    ("a=b@", "unable to parse requirement"),
    ("a>x", "the value must be an integer"),
    ("a=" + "x" * 64, "must be no more than 63 characters"),
])
def test_parse_errors(selector: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_selector(selector)


def test_string_form_is_canonical_and_sorted_by_key() -> None:
    s = parse_selector("tier in (b, a),app=web,!old,gpu,count>3,x!=y,z==q")
    assert str(s) == "app=web,count>3,gpu,!old,tier in (a,b),x!=y,z==q"
    assert parse_selector(str(s)) == s


def test_label_selector_dict_roundtrip() -> None:
    ls = {"matchLabels": {"app": "web", "tier": "fe"},
          "matchExpressions": [{"key": "env", "operator": "In", "values": ["staging", "prod"]},
                               {"key": "track", "operator": "NotIn", "values": ["canary"]},
                               {"key": "gpu", "operator": "Exists"},
                               {"key": "old", "operator": "DoesNotExist"}]}
    sel = selector_from_label_selector(ls)
    assert selector_to_string(ls) == "app=web,env in (prod,staging),gpu,!old,tier=fe,track notin (canary)"
    assert sel.matches({"app": "web", "tier": "fe", "env": "prod", "gpu": "1"})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "prod", "gpu": "1", "old": "x"})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "prod", "gpu": "1", "track": "canary"})
    assert selector_from_label_selector(sel.to_label_selector()) == sel


def test_nil_and_empty_label_selectors() -> None:
    assert not selector_from_label_selector(None).matches({"a": "b"})  # nil selects nothing
    assert selector_from_label_selector({}).matches({"a": "b"})  # empty selects everything
    assert selector_to_string(None) == ""
    assert selector_to_string({}) == ""
    assert Selector.nothing().is_nothing()
    assert selector_from_label_selector({}).empty()


def test_label_selector_model_is_accepted() -> None:
    from mkube.api.types import LabelSelector

    model = LabelSelector.from_dict({"matchLabels": {"app": "web"}})
    assert label_selector_matches(model, {"app": "web"})
    assert selector_to_string(model) == "app=web"


def test_bad_label_selector_dict() -> None:
    with pytest.raises(ValueError, match="not a valid label selector operator"):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(ValueError, match="values set can't be empty"):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})


def test_selector_from_set_and_format_labels() -> None:
    assert selector_from_set({"b": "2", "a": "1"}).matches({"a": "1", "b": "2", "c": "3"})
    assert str(selector_from_set({"b": "2", "a": "1"})) == "a=1,b=2"
    assert selector_from_set({}).matches({"x": "y"})
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"


def test_to_label_selector_rejects_inexpressible_terms() -> None:
    with pytest.raises(ValueError):
        parse_selector("a!=b").to_label_selector()


POD = {"metadata": {"name": "web-1", "namespace": "prod"},
       "spec": {"nodeName": "node-a", "restartPolicy": "Always"},
       "status": {"phase": "Running", "podIP": "10.0.0.5"}}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name=web-2", False),
    ("spec.nodeName!=node-b", True),
    ("spec.nodeName=node-a,status.phase=Running", True),
    ("spec.nodeName=node-a,status.phase!=Running", False),
    ("spec.nodeName=", False),
    ("status.nominatedNodeName=", True),  # a missing field reads as ""
    ("spec.hostNetwork=false", True),  # a missing bool reads as false
    ("metadata.namespace=prod", True),
])
def test_field_selector_match(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector, "Pod").matches(POD) is matches


def test_field_selector_unsupported_field() -> None:
    with pytest.raises(ValueError, match="field label not supported: spec.foo"):
        parse_field_selector("spec.foo=bar", "Pod")
    with pytest.raises(ValueError, match="field label not supported: metadata.namespace"):
        parse_field_selector("metadata.namespace=x", "Node", namespaced=False)
    # without a kind any field parses
    assert parse_field_selector("spec.foo=bar").requires("spec.foo") == "bar"


def test_field_selector_escapes_and_errors() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c", "ConfigMap")
    assert sel.matches({"metadata": {"name": "a,b=c"}})
    assert str(sel) == r"metadata.name=a\,b\=c"
    with pytest.raises(ValueError, match="expected '=', '==' or '!='"):
        parse_field_selector("metadata.name", "Pod")
    with pytest.raises(ValueError, match="invalid field selector"):
        parse_field_selector("metadata.name=a=b", "Pod")


def test_field_selector_per_kind_fields() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert parse_field_selector("spec.unschedulable=true", "Node", namespaced=False).matches(node)
    event = {"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "p"},
             "source": {"component": "kubelet"}, "type": "Warning", "reason": "BackOff"}
    sel = parse_field_selector("involvedObject.kind=Pod,involvedObject.name=p,source=kubelet,type=Warning", "Event")
    assert sel.matches(event)
    assert parse_field_selector("type=kubernetes.io/tls", "Secret").matches({"type": "kubernetes.io/tls"})
    rs = {"metadata": {"name": "r"}, "status": {}}
    assert parse_field_selector("status.replicas=0", "ReplicaSet").matches(rs)
