"""Customer Center search (``GET /ui/{env}/customers``) through HTTP: every way of searching,
paging, the exact user id first, htmx fragments, permissions and environment isolation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub.services import customers as customer_service
from hub.testing import make_environment
from hub_plugins.workbench import search as search_service

VIEW = ["customer_center:view"]

CUSTOMERS = [
    {"userId": "cust-1", "fields": {"name": "Ann Archer", "email": "Ann.Archer@example.com",
                                    "phone": "+442079460958", "plan": "gold", "seats": 3},
     "tags": ["vip"]},
    {"userId": "cust-10", "fields": {"name": "Bob Baker", "email": "bob@example.org", "plan": "free"}},
    {"userId": "cust-11", "fields": {"name": "annika smith", "email": "annika@example.net",
                                     "phone": "+1 555 0100"}},
    {"userId": "cust-2", "fields": {"name": "Carla Cole", "email": "carla@example.com", "plan": "gold"}},
    {"userId": "zed", "fields": {"name": "Zed", "email": "ann@zed.example"}},
]


@pytest.fixture
async def customers(hub: Any, hub_env: Any) -> None:
    await customer_service.define_field(hub, "acme", "plan", "text")
    await customer_service.define_field(hub, "acme", "seats", "number")
    result = await customer_service.upsert_customers(hub, "acme", CUSTOMERS)
    assert result["failed"] == 0
    other = await make_environment(hub, "globex")
    assert other.id == "globex"
    result = await customer_service.upsert_customers(hub, "globex", [
        {"userId": "cust-1", "fields": {"name": "Ann Other", "email": "ann@globex.example"}},
        {"userId": "cust-99", "fields": {"name": "Annabel Globex", "email": "annabel@globex.example"}},
    ])
    assert result["failed"] == 0


def found(html: str) -> list[str]:
    """The user ids in the results table, in order."""
    return re.findall(r'<td><a href="/ui/acme/customers/([^"?]+)">', html)


async def ids(client: Any, **params: Any) -> list[str]:
    response = await client.get("/ui/acme/customers", params=params)
    assert response.status_code == 200, response.text
    return found(response.text)


async def test_every_way_of_searching_finds_the_right_customers(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    # Anything: user id (exact first, then prefix), email prefix, name prefix, case-insensitive.
    assert await ids(client, q="cust-1") == ["cust-1", "cust-10", "cust-11"]
    # Emails first (in byte order: "ann.archer@" before "ann@"), then names.
    assert await ids(client, q="ann") == ["cust-1", "zed", "cust-11"]
    assert await ids(client, q="ANN.ARCHER@EXAMPLE.COM") == ["cust-1"]
    assert await ids(client, q="bob b") == ["cust-10"]
    assert await ids(client, q="+442079460958") == ["cust-1"]
    assert await ids(client, q="+44 20 7946 0958") == ["cust-1"]  # spaces as a caller reads it
    assert await ids(client, q="nobody") == []
    # field:value and the picker.
    assert await ids(client, q="phone:+1 555 0100") == ["cust-11"]
    assert await ids(client, q="plan:gold") == ["cust-1", "cust-2"]
    assert await ids(client, q="seats:3") == ["cust-1"]
    assert await ids(client, q="email:carla@") == ["cust-2"]
    assert await ids(client, q="name:ann") == ["cust-1", "cust-11"]
    assert await ids(client, q="id:cust-1") == ["cust-1", "cust-10", "cust-11"]
    assert await ids(client, q="gold", field="plan") == ["cust-1", "cust-2"]
    assert await ids(client, q="cust-", field="user_id") == ["cust-1", "cust-10", "cust-11", "cust-2"]
    assert await ids(client, q="Z", field="name") == ["zed"]
    assert await ids(client, q="GOLD", field="plan") == []  # other fields match exactly
    # Nothing typed: everyone, by user id.
    assert await ids(client) == ["cust-1", "cust-10", "cust-11", "cust-2", "zed"]


async def test_results_show_name_email_tags_and_link_to_the_customer(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    page = (await client.get("/ui/acme/customers", params={"q": "cust-1"})).text
    row = page.split('<tr class="exact">', 1)[1].split("</tr>", 1)[0]
    assert "Ann Archer" in row and "Ann.Archer@example.com" in row and ">vip<" in row
    assert "exact user id" in row and "never" in row
    assert page.count('class="exact"') == 1


async def test_a_value_of_the_wrong_type_is_a_422_with_the_reason(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    response = await client.get("/ui/acme/customers", params={"q": "seats:many"})
    assert response.status_code == 422
    assert "seats: must be a number" in response.text
    assert 'value="seats:many"' in response.text  # the form keeps what was typed


async def test_control_characters_are_a_422_not_an_error(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    for q in ("ann\x00", "phone:\x00", "cust\x07-1"):
        response = await client.get("/ui/acme/customers", params={"q": q})
        assert response.status_code == 422, q
        assert "control characters" in response.text


async def test_enter_opens_the_customer_on_an_exact_user_id_or_a_single_result(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    response = await client.get("/ui/acme/customers", params={"q": "cust-1", "go": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/acme/customers/cust-1"
    response = await client.get("/ui/acme/customers", params={"q": "carla", "go": "1"})
    assert response.headers["location"] == "/ui/acme/customers/cust-2"
    response = await client.get("/ui/acme/customers", params={"q": "ann", "go": "1"})
    assert response.status_code == 200 and len(found(response.text)) == 3
    # Live search (htmx) never navigates away.
    response = await client.get("/ui/acme/customers", params={"q": "cust-1", "go": "1"},
                                headers={"HX-Request": "true", "HX-Target": "search-results"})
    assert response.status_code == 200 and found(response.text)[0] == "cust-1"


async def test_user_ids_are_quoted_in_links(hub, hub_env, signed_in):
    result = await customer_service.upsert_customers(hub, "acme", [{"userId": "a b?c#d%e"}])
    assert result["failed"] == 0
    client = await signed_in("ada@example.com", VIEW)
    page = (await client.get("/ui/acme/customers", params={"q": "a b"})).text
    assert 'href="/ui/acme/customers/a%20b%3Fc%23d%25e"' in page


async def test_paging_by_fifty(hub, hub_env, signed_in):
    await customer_service.upsert_customers(hub, "acme", [
        {"userId": f"user-{n:03}", "fields": {"name": f"Pat {n:03}"}} for n in range(120)])
    client = await signed_in("ada@example.com", VIEW)
    first = await client.get("/ui/acme/customers", params={"q": "user-"})
    assert found(first.text) == [f"user-{n:03}" for n in range(50)]
    assert 'href="/ui/acme/customers?q=user-&amp;page=2" rel="next"' in first.text
    assert "Previous page" not in first.text
    third = await client.get("/ui/acme/customers", params={"q": "user-", "page": "3"})
    assert found(third.text) == [f"user-{n:03}" for n in range(100, 120)]
    assert "Next page" not in third.text and 'rel="prev"' in third.text
    # Anything mode pages its merged results the same way.
    second = await ids(client, q="pat", page="2")
    assert second == [f"user-{n:03}" for n in range(50, 100)]
    assert await ids(client, q="user-", page="junk") == [f"user-{n:03}" for n in range(50)]


async def test_htmx_gets_the_results_fragment_and_a_plain_get_the_page(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW)
    fragment = await client.get("/ui/acme/customers", params={"q": "ann"},
                                headers={"HX-Request": "true", "HX-Target": "search-results"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert found(fragment.text) == ["cust-1", "zed", "cust-11"]
    page = await client.get("/ui/acme/customers", params={"q": "ann"})
    assert "<html" in page.text and 'role="search"' in page.text
    assert 'hx-trigger="input changed delay:300ms, search"' in page.text
    assert 'hx-push-url="true"' in page.text and 'method="get"' in page.text
    assert '<label for="search-q">' in page.text and '<label for="search-field">' in page.text
    assert '<option value="plan">' in page.text  # custom fields in the picker
    restore = await client.get("/ui/acme/customers", params={"q": "ann"},
                               headers={"HX-Request": "true", "HX-Target": "search-results",
                                        "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


async def test_without_a_session_the_search_redirects_to_sign_in(hub_env, ui_client):
    response = await ui_client().get("/ui/acme/customers", params={"q": "ann"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")


async def test_members_without_customer_center_view_are_refused(customers, signed_in):
    client = await signed_in("wendy@example.com", ["workbench:edit"])
    response = await client.get("/ui/acme/customers", params={"q": "ann"})
    assert response.status_code == 403
    assert "Ann Archer" not in response.text


async def test_another_environment_is_refused(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW, ["acme"])
    response = await client.get("/ui/globex/customers", params={"q": "ann"})
    assert response.status_code == 403
    assert "Annabel" not in response.text


async def test_customers_of_another_environment_never_appear(customers, signed_in):
    client = await signed_in("ada@example.com", VIEW, ["acme", "globex"])
    for q in ("annabel", "cust-99", "email:ann@globex.example", "name:ann o", "ann o"):
        page = (await client.get("/ui/acme/customers", params={"q": q})).text
        results = page.split('id="search-results"', 1)[1]
        assert found(results) == [], q
        assert "<td>ann@globex.example" not in results and "Annabel" not in results, q
        assert "Ann Other" not in results, q
    assert await ids(client, q="ann") == ["cust-1", "zed", "cust-11"]
    assert await ids(client, q="cust-") == ["cust-1", "cust-10", "cust-11", "cust-2"]
    page = (await client.get("/ui/globex/customers", params={"q": "ann"})).text
    assert re.findall(r'<td><a href="/ui/globex/customers/([^"?]+)">', page) == ["cust-1", "cust-99"]
    assert "Ann Archer" not in page


def test_reading_what_was_typed():
    fields = {"name": "text", "email": "text", "phone": "text", "plan": "text"}
    read = search_service.read
    assert read(" ann ", "any", fields) == search_service.Search("any", "ann")
    assert read("phone: +44 1", "any", fields) == search_service.Search("phone", "+44 1")
    assert read("user_id:x:y", "any", fields) == search_service.Search("user_id", "x:y")
    assert read("unknown:x", "any", fields) == search_service.Search("any", "unknown:x")
    assert read("plan:gold", "name", fields) == search_service.Search("name", "plan:gold")
    assert read("x", "nonsense", fields) == search_service.Search("any", "x")
