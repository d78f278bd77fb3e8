"""Interactions (PROFILES.md §4): gmsd's import and delete routes, the three queries, the content
sub-URLs served with their stored types as downloads."""

from __future__ import annotations

import base64

from starlette.testclient import TestClient

from tests.support.ucs_support import CS, assert_error


def add(client: TestClient, **body: object) -> str:
    response = client.post(f"{CS}/interactions", json=body)
    assert response.status_code == 201, response.text
    interaction_id = str(response.json()["interaction_id"])
    assert response.headers["location"] == f"{CS}/interactions/{interaction_id}"
    return interaction_id


def test_import_query_and_delete(client: TestClient) -> None:
    first = add(client, interaction_id="00001a57JGQ00BW8", customer_id="C1", service_id="S1", media_type="chat",
                external_id="00AF4A7951D60009", established_date="2009-08-05T09:33:15.000Z",
                released_date="2009-08-05T09:40:00Z", subject="hello", plain_text="Hi there",
                udata={"RTargetTypeSelected": "2", "_smsSrcNumber": "+33298143456"})
    second = add(client, customer_id="C1", media_type="email", established_date="2010-01-01T00:00:00.000Z",
                 structured_text="<p>hi</p>", binary_content=base64.b64encode(b"\x00\xffPDF").decode(),
                 binary_content_type="application/pdf")
    assert len(second) == 16
    one = client.get(f"{CS}/interactions/{first}").json()
    assert one == {"interaction_id": first, "external_id": "00AF4A7951D60009", "customer_id": "C1",
                   "service_id": "S1", "media_type": "chat", "established_date": "2009-08-05T09:33:15.000Z",
                   "released_date": "2009-08-05T09:40:00.000Z", "subject": "hello",
                   "text": f"http://testserver{CS}/interactions/{first}/plain_text",
                   "udata": {"RTargetTypeSelected": "2", "_smsSrcNumber": "+33298143456"}}
    listed = client.get(f"{CS}/customers/C1/interactions").json()
    assert [i["interaction_id"] for i in listed] == [second, first]  # newest first
    assert listed[0]["structured_text"].endswith(f"/interactions/{second}/structured_text")
    assert [i["interaction_id"] for i in client.get(f"{CS}/services/S1/interactions").json()] == [first]
    assert client.get(f"{CS}/services/S2/interactions").json() == []
    assert client.get(f"{CS}/customers/nobody/interactions").json() == []
    assert_error(client.post(f"{CS}/interactions", json={"interaction_id": first, "media_type": "x"}),
                 409, "ConflictException")
    assert client.delete(f"{CS}/interactions/{first}").status_code == 200
    assert_error(client.get(f"{CS}/interactions/{first}"), 404, "NotFoundException")
    assert_error(client.delete(f"{CS}/interactions/{first}"), 404, "NotFoundException")
    assert [i["interaction_id"] for i in client.get(f"{CS}/customers/C1/interactions").json()] == [second]
    assert client.get(f"{CS}/services/S1/interactions").json() == []


def test_contents_are_served_with_their_types(client: TestClient) -> None:
    text_only = add(client, media_type="chat", plain_text="héllo")
    rich = add(client, media_type="email", structured_text="<script>x</script>", structured_text_type="text/html",
               binary_content=base64.b64encode(b"\x00\x01bin").decode())
    response = client.get(f"{CS}/interactions/{text_only}/plain_text")
    assert response.status_code == 200 and response.text == "héllo"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    page = client.get(f"{CS}/interactions/{rich}/structured_text")
    assert page.headers["content-type"] == "text/html" and "sandbox" in page.headers["content-security-policy"]
    binary = client.get(f"{CS}/interactions/{rich}/binary_content")
    assert binary.content == b"\x00\x01bin" and binary.headers["content-type"] == "application/octet-stream"
    assert binary.headers["content-disposition"] == "attachment"
    assert binary.headers["x-content-type-options"] == "nosniff"
    for url in (f"{text_only}/structured_text", f"{text_only}/binary_content", f"{rich}/plain_text",
                "nope/plain_text", "a%20b/plain_text"):
        assert_error(client.get(f"{CS}/interactions/{url}"), 404, "NotFoundException")


def test_bad_imports_are_400(client: TestClient) -> None:
    for bad in ({}, {"media_type": 1}, {"media_type": "x", "interaction_id": "a b"},
                {"media_type": "x", "established_date": "yesterday"}, {"media_type": "x", "binary_content": "!!"},
                {"media_type": "x", "udata": {"a": 1}}, {"media_type": "x", "colour": "red"},
                {"media_type": "x", "binary_content": "AA==", "binary_content_type": "bad\ntype"},
                {"media_type": ""}):
        assert_error(client.post(f"{CS}/interactions", json=bad), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/interactions"), 400, "BadRequestException")
    assert_error(client.post(f"{CS}/interactions", content=b"media_type=x",
                             headers={"content-type": "text/plain"}), 415, "InvalidParameterException")
