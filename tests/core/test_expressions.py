"""The branch expression language (hub/core/expressions.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.expressions import Expression, compile_expression

CONTEXT = {
    "variables": {"amount": 750, "merchant": "ACME Travel", "country": "NZ", "vip": True,
                  "limit": 500.0, "tags": ["gold", "travel"], "zero": 0, "note": None,
                  "paidAt": "2026-03-01"},
    "customer": {"userId": "u1", "fields": {"plan": "premium"}, "tags": ["vip", "beta"]},
    "steps": {"ask": {"values": {"recognised": "no", "confirm": False, "items": ["x", "y"]},
                      "event": "card-completed"},
              "call-api": {"response": {"status": 200, "body": {"ok": True}}}},
    "invocation": {"id": "inv-1", "source": "api", "metadata": {}},
}


def ev(text: str):
    return compile_expression(text).evaluate(CONTEXT)


@pytest.mark.parametrize(("text", "expected"), [
    ("variables.amount > 500", True),
    ("variables.amount > variables.limit", True),
    ("variables.amount <= 500", False),
    ("100 < variables.amount < 1000", True),
    ("100 < variables.amount < 700", False),
    ("steps.ask.values.recognised == 'no'", True),
    ('steps.ask.values.recognised != "no"', False),
    ("steps.ask.values.confirm == false", True),
    ("steps.ask.values.confirm", False),
    ("not steps.ask.values.confirm", True),
    ("variables.vip and variables.amount > 100", True),
    ("variables.vip and variables.amount > 1000", False),
    ("variables.amount > 1000 or customer.fields.plan == 'premium'", True),
    ("variables.country in ['NZ', 'AU']", True),
    ("variables.country not in ['NZ', 'AU']", False),
    ("'gold' in variables.tags", True),
    ("'vip' in customer.tags and 'beta' in customer.tags", True),
    ("'Travel' in variables.merchant", True),
    ("'recognised' in steps.ask.values", True),
    ("variables.amount * 2 - 100 == 1400", True),
    ("variables.amount / 4", 187.5),
    ("variables.amount % 7", 1),
    ("-variables.amount", -750),
    ("+variables.amount", 750),
    ("'a' + 'b'", "ab"),
    ("steps.ask.event == 'card-completed'", True),
    ('steps["call-api"].response.status == 200', True),
    ('steps["call-api"].response.body.ok == true', True),
    ("steps.ask.values.items[1] == 'y'", True),
    ("variables.paidAt >= '2026-01-01'", True),
    ("[1, 2, variables.zero]", [1, 2, 0]),
    ("null", None),
    ("True and not False", True),
    ("None == null", True),
])
def test_expressions_evaluate_against_the_context(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("variables.missing == null", True),
    ("variables.note == null", True),
    ("variables.missing != null", False),
    ("variables.missing > 5", False),
    ("variables.missing < 5", False),
    ("variables.missing >= variables.missing", False),
    ("variables.missing == 0", False),
    ("steps.nope.values.x == 'no'", False),
    ("variables.missing in ['a']", False),
    ("'a' in variables.missing", False),
    ("'a' not in variables.missing", False),
    ("variables.missing + 1", None),
    ("-variables.missing", None),
    ("not variables.missing", True),
])
def test_missing_values_are_null_and_comparisons_with_them_are_false(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("variables.merchant > 5", False),
    ("variables.amount < 'z'", False),
    ("variables.vip == 1", False),
    ("1 == true", False),
    ("variables.zero == false", False),
    ("true > false", False),
    ("variables.amount / 0", None),
    ("variables.amount % 0", None),
    ("variables.merchant * 2", None),
    ("variables.vip + 1", None),
    ("1 in 5", False),
    ("[1] in variables.merchant", False),
    ("1e308 * 10", None),
    ("'x' in {'a': 1}.a" if False else "1 in ['1']", False),
])
def test_mismatched_types_never_raise(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("", "non-empty"),
    ("   ", "non-empty"),
    ("variables.amount >", "invalid syntax"),
    ("variables.amount = 5", "=="),
    ("open('x')", "function calls"),
    ("variables.__class__", "__"),
    ("__import__", "__"),
    ("variables.amount ** 2", r"\*\*"),
    ("variables.amount // 2", "//"),
    ("variables.a is None", "== null"),
    ("lambda: 1", "lambdas"),
    ("1 if variables.vip else 2", "branch"),
    ("{'a': 1}", "object"),
    ("[x for x in variables.tags]", "comprehensions"),
    ("(x := 1)", "assignment"),
    ("f'{variables.amount}'", "f-strings"),
    ("b'bytes'", "bytes"),
    ("variables.tags[variables.zero]", "index"),
    ("variables.tags[-1]", "index"),
    ("variables.tags[0:1]", "index"),
    ("variables.amount.bit_length()", "function calls"),
    ("'a' + " * 60 + "'a'", "nested"),
    ("x" * 2001, "at most"),
    ("~variables.amount", "~"),
    ("variables.amount & 1", "&"),
    ("a.b['x.y']", "index"),
])
def test_compile_refuses_anything_outside_the_language_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        compile_expression(text)


def test_compile_refuses_non_strings():
    with pytest.raises(ValueError):
        compile_expression(None)  # type: ignore[arg-type]


def test_names_lists_the_paths_read_once_each():
    expression = compile_expression(
        "variables.amount > 5 and steps.ask.values.confirm == true or variables.amount < 2 "
        "and steps['call-api'].response.status == 200 and true and items[0] == null")
    assert expression.names() == ["variables.amount", "steps.ask.values.confirm",
                                  "steps.call-api.response.status", "items.0"]


def test_expressions_keep_their_source_and_compare_by_it():
    first, second = compile_expression("a == 1"), compile_expression("a == 1")
    assert isinstance(first, Expression) and first.source == "a == 1"
    assert first == second and hash(first) == hash(second) and first != compile_expression("a == 2")
    assert repr(first) == "Expression('a == 1')"


def test_chained_comparisons_evaluate_each_operand_against_its_neighbour():
    assert compile_expression("1 < a < b < 10").evaluate({"a": 2, "b": 3}) is True
    assert compile_expression("1 < a < b < 10").evaluate({"a": 2, "b": 1}) is False


# --- properties --------------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
json_values = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "values", "0"]), inner,
                                                 max_size=3)), max_leaves=12)
contexts = st.dictionaries(st.sampled_from(["variables", "steps", "customer", "a", "b"]), json_values,
                           max_size=4)

atoms = st.sampled_from(["variables.a", "variables.b", "steps.a.values.b", "a", "b[0]", "a[1]", "null",
                         "true", "1", "0", "-2.5", "'x'", "''", "[1, 'x', null]", "1e308"])


def _expression(children):
    binary = st.tuples(children, st.sampled_from(
        ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or", "+", "-", "*", "/", "%"]),
        children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    unary = st.tuples(st.sampled_from(["not ", "-", "+"]), children).map(lambda t: f"({t[0]}{t[1]})")
    return st.one_of(binary, unary, st.lists(children, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"))


expressions = st.recursive(atoms, _expression, max_leaves=8)


@settings(max_examples=300)
@given(expressions, contexts)
def test_evaluation_never_raises_on_any_context(text, context):
    compile_expression(text).evaluate(context)


@given(st.text(max_size=30))
def test_compile_either_succeeds_or_raises_value_error(text):
    try:
        compile_expression(text)
    except ValueError:
        pass


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5)), st.integers())
def test_comparisons_agree_with_python_on_numbers(value, other):
    context = {"v": value, "o": other}
    result = compile_expression("v < o").evaluate(context)
    if isinstance(value, str):
        assert result is False
    else:
        assert result == (value < other)
