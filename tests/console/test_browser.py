"""The console, the API reference and CORS in a real headless Chromium against a real `gmsd serve`
(Basic authentication on, CORS allowing one local origin): pages load with no console error and
no CSP violation at desktop and 360 px widths; a service created through the page (text field,
chosen file, dropped file) is listed, downloadable and deletable; a composite start made over
HTTP shows on the journey timeline with its state and task; a customer identified on the
Profiles view shows with the records of their extensions and leads to their timeline; a page of
another origin calls the API with `gms_user`, and one of an origin that is not allowed cannot."""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import free_port
from tests.support.browser import WatchedPage, chromium, watched_page
from tests.support.gmsd_process import GmsdProcess, gmsd_serving

USER, PASSWORD = "console-user", "console-pass-1"
CREDENTIALS = {"username": USER, "password": PASSWORD}
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
GMS = "/genesys/1/service"
CS = "/genesys/1/cs"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3


class OtherOrigin:
    """A static page served from another local port: another origin for the browser."""

    def __init__(self, directory: Path) -> None:
        (directory / "index.html").write_text("<!doctype html><title>a GMS client page</title><h1>client</h1>")
        (directory / "favicon.ico").write_bytes(b"")
        self.port = free_port()
        handler = partial(_QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the test output stays readable
        pass


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OtherOrigin, OtherOrigin]]:
    allowed = OtherOrigin(tmp_path_factory.mktemp("allowed-origin"))
    refused = OtherOrigin(tmp_path_factory.mktemp("refused-origin"))
    yield allowed, refused
    allowed.stop()
    refused.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           origins: tuple[OtherOrigin, OtherOrigin]) -> Iterator[GmsdProcess]:
    directory = tmp_path_factory.mktemp("gmsd-console")
    credentials = directory / "credentials.toml"
    credentials.write_text(f'username = "{USER}"\npassword = "{PASSWORD}"\n')
    config = f"""
[auth]
file = "{credentials}"

[cors]
allowed_origins = ["{origins[0].origin}"]

[services.request-interaction]
_ttl = 3600

[services.callback-request]
_type = "ors"
_service = "http://127.0.0.1:9/callback"
_ttl = 600
"""
    with gmsd_serving(directory, None, config, workers=1) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


@pytest.fixture
def http(server: GmsdProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, auth=(USER, PASSWORD), timeout=10) as client:
        yield client


@pytest.fixture
def console(browser: Browser) -> Iterator[WatchedPage]:
    watched = watched_page(browser, http_credentials=CREDENTIALS, viewport={"width": 1280, "height": 900})
    yield watched
    watched.context.close()


def open_console(watched: WatchedPage, server: GmsdProcess, view: str = "services") -> Page:
    page = watched.page
    page.goto(f"{server.base}/console/#{view}")
    expect(page.locator("#configured tbody tr").first).to_be_attached()  # the page's scripts ran
    return page


@pytest.mark.parametrize("width", [1280, 360])
def test_console_and_reference_load_without_errors_or_csp_violations(browser: Browser, server: GmsdProcess,
                                                                      width: int) -> None:
    watched = watched_page(browser, http_credentials=CREDENTIALS, viewport={"width": width, "height": 800})
    page = watched.page
    try:
        page.goto(f"{server.base}/console/")
        rows = page.locator("#configured tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("callback-request")
        expect(rows.first).to_contain_text("ors")
        expect(rows.nth(1)).to_contain_text("request-interaction")
        expect(rows.nth(1)).to_contain_text("1 h 00 min")
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing runs off the screen
        page.click("#nav-journeys")
        expect(page.locator("#view-journeys")).to_be_visible()
        expect(page.locator("#view-services")).to_be_hidden()
        expect(page.locator("#nav-journeys")).to_have_attribute("aria-current", "page")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.click("#nav-profiles")
        expect(page.locator("#view-profiles")).to_be_visible()
        expect(page.locator("#identify-none")).to_be_visible()  # the default tenant has no key yet
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        watched.assert_clean()
        page.goto(f"{server.base}/docs")
        expect(page.locator(".opblock-tag", has_text="Service API")).to_be_visible(timeout=20_000)
        expect(page.locator(".opblock-tag", has_text="Console")).to_be_visible()
        watched.assert_clean()
    finally:
        watched.context.close()


def test_create_a_service_with_files_then_list_download_and_delete(console: WatchedPage, server: GmsdProcess,
                                                                   http: httpx.Client) -> None:
    page = open_console(console, server)
    page.select_option("#create-name", "request-interaction")
    page.fill("#create-fields .pair-key", "language")
    page.fill("#create-fields .pair-value", "french")
    page.set_input_files("#create-files", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": PNG}])
    # A second file dropped onto the zone, as a person drags one from their desktop.
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["dropped text"], "note.txt", {type: "text/plain"}));
        const drop = new DragEvent("drop", {dataTransfer: transfer, bubbles: true});
        document.getElementById("drop-zone").dispatchEvent(drop);
    }""")
    expect(page.locator("#file-list .pair")).to_have_count(2)
    page.click("#create-form button[type=submit]")
    photo = page.locator("#keys tbody tr[data-key=photo]")
    expect(photo).to_contain_text("image/png")
    expect(photo).to_contain_text(f"{len(PNG)} B")
    expect(photo).to_contain_text("photo.png")
    expect(page.locator("#keys tbody tr[data-key=note]")).to_contain_text("text/plain")
    expect(page.locator("#keys tbody tr[data-key=language]")).to_contain_text("french")
    expect(page.locator("#storage-name")).to_have_text("request-interaction")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^59 min \d\d s$"))
    sid = page.input_value("#service-id")
    assert http.get(f"{GMS}/{sid}/storage").json() == {"language": "french"}  # stored for real

    with page.expect_download() as download:
        photo.get_by_role("link", name="Download photo").click()
    assert download.value.suggested_filename == "photo.png"
    assert Path(download.value.path()).read_bytes() == PNG

    photo.get_by_role("button", name="Delete photo").click()
    expect(page.locator("#keys tbody tr[data-key=photo]")).to_have_count(0)
    assert http.get(f"{GMS}/{sid}/storage/binary/photo").status_code == 404

    page.fill("#extend-ttl", "7200")
    page.click("#extend-form button")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^(1 h 59 min|2 h 00 min)$"))
    page.click("#delete-all")
    expect(page.locator("#keys tbody")).to_have_text("The storage is empty.")
    assert http.get(f"{GMS}/{sid}/storage").json() == {}
    console.assert_clean()


def test_errors_are_shown_with_the_api_message(console: WatchedPage, server: GmsdProcess) -> None:
    page = open_console(console, server)
    unknown = "0f0e0d0c-0b0a-4999-8888-777766665555"
    page.fill("#service-id", unknown)
    page.press("#service-id", "Enter")  # the keyboard submits the form
    expect(page.locator("#error")).to_have_text(f"service '{unknown}' not found")
    expect(page.locator("#storage")).to_be_hidden()
    # The failed request is the browser's to report, and it does: a 404 is its only console error.
    assert all("404" in problem for problem in console.problems), console.problems
    assert console.violations() == []


def test_a_composite_start_over_http_shows_on_the_timeline(console: WatchedPage, server: GmsdProcess,
                                                           http: httpx.Client) -> None:
    element = {"service": {"service_type": "Order", "customer_id": "C-timeline", "Cart": {"items": 2}},
               "state": {"state_type": "Checkout"},
               "task": {"task_type": "Payment", "Amount": {"value": 12, "currency": "EUR"}},
               "associate_state_task": True}
    started = http.post(f"{CS}/services_composite/start", json={"services": [element]},
                        headers={"ContactCenterId": "shop-1"})
    assert started.status_code == 200, started.text
    result = started.json()["services"][0]
    service_id, task_id = result["service"]["service_id"], result["task"]["task_id"]

    page = open_console(console, server, "journeys")
    page.fill("#journey-value", "C-timeline")
    page.fill("#journey-tenant", "shop-1")
    page.click("#journey-form button")
    service = page.locator("#timeline .bar.service")
    state = page.locator("#timeline .bar.state")
    task = page.locator("#timeline .bar.task")
    expect(service).to_have_count(1)
    expect(service).to_have_text("Order")
    expect(state).to_have_text("Checkout")
    expect(task).to_have_text("Payment")
    for bar in (service, state, task):
        expect(bar).to_have_class(re.compile(r"\bactive\b"))  # open-ended: nothing ended yet
    rows = page.locator("#timeline .row")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_have_class(re.compile(r"\bdepth-2\b"))  # the task under its state
    legend = page.locator("#legend")
    expect(legend).to_contain_text("service: Order")
    expect(legend).to_contain_text("task: Payment")
    page.set_viewport_size({"width": 360, "height": 800})  # the timeline is readable on a phone too
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(task).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 900})

    task.focus()
    page.keyboard.press("Enter")  # the bars are buttons: the keyboard opens them
    expect(page.locator("#details-title")).to_have_text(f"Task Payment #{task_id}")
    expect(page.locator("#details-data")).to_contain_text('"currency": "EUR"')
    expect(page.locator("#details-events")).to_contain_text('"started"')

    page.get_by_role("button", name="End the task").click()
    expect(task).not_to_have_class(re.compile(r"\bactive\b"))
    ended = http.get(f"{CS}/services/{service_id}/tasks/{task_id}", headers={"ContactCenterId": "shop-1"})
    assert "completed" in ended.json()

    state.click()
    page.get_by_placeholder("next state type").fill("Delivery")
    page.get_by_role("button", name="Transition to").click()
    expect(page.locator("#timeline .bar.state")).to_have_count(2)
    expect(page.locator("#timeline .bar.state.active")).to_have_text("Delivery")
    console.assert_clean()

    # Another tenant holds nothing for this customer.
    page.fill("#journey-tenant", "")
    page.click("#journey-form button")
    expect(page.locator("#timeline-empty")).to_have_text("No service for this customer (in this tenant).")


def test_identify_a_customer_then_see_the_profile_its_extension_records_and_their_timeline(
        console: WatchedPage, server: GmsdProcess, http: httpx.Client) -> None:
    tenant = {"ContactCenterId": "profiles-1"}  # the view reads the tenant the person names
    phone = {"name": "Phone", "type": "multi-valued", "unique": ["PhoneNumber"],
             "attributes": [{"name": "PhoneNumber", "type": "string", "mandatory": True},
                            {"name": "description", "type": "string", "length": 32}]}
    assert http.post(f"{CS}/metadata/profiles/extensions", json=phone, headers=tenant).status_code == 201
    key = {"name": "idPhone", "source": "Phone", "attributes": ["PhoneNumber"]}
    assert http.post(f"{CS}/metadata/identification-keys", json=key, headers=tenant).status_code == 201
    profile = {"FirstName": "Bruce", "LastName": "Banner", "EmailAddress": ["bruce@example.com", "b@example.org"],
               "Phone": [{"PhoneNumber": "3145926535", "description": "family phone"},
                         {"PhoneNumber": "3145920000", "description": "work"}]}
    created = http.post(f"{CS}/profiles", json=profile, headers=tenant)
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    other = http.post(f"{CS}/profiles", json={"FirstName": "Betty", "Phone": [{"PhoneNumber": "999"}]}, headers=tenant)
    assert other.status_code == 201, other.text
    started = http.post(f"{CS}/services/start", json={"service_type": "Repair", "customer_id": customer_id},
                        headers=tenant)
    assert started.status_code == 201, started.text

    page = open_console(console, server, "profiles")
    page.fill("#profiles-tenant", "profiles-1")
    page.dispatch_event("#profiles-tenant", "change")
    expect(page.locator("#identify-key option")).to_have_text(["idPhone (Phone.PhoneNumber)"])
    page.fill('.identify-value[data-attribute="Phone.PhoneNumber"]', "3145926535")
    page.press('.identify-value[data-attribute="Phone.PhoneNumber"]', "Enter")  # the keyboard submits
    cards = page.locator("#profiles article.profile")
    expect(cards).to_have_count(1)
    card = page.locator(f'article.profile[data-customer-id="{customer_id}"]')
    expect(card.locator("h3")).to_have_text(f"Customer {customer_id}")
    expect(card.locator(".fields")).to_contain_text("Banner")
    expect(card.locator(".fields")).to_contain_text("bruce@example.com, b@example.org")  # primary first
    records = card.locator('table[data-extension="Phone"] tbody tr')
    expect(records).to_have_count(2)
    expect(card.locator('table[data-extension="Phone"]')).to_contain_text("family phone")
    expect(page.locator("#status")).to_have_text("One customer matches.")
    page.set_viewport_size({"width": 360, "height": 800})  # readable on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.set_viewport_size({"width": 1280, "height": 900})

    card.get_by_role("button", name="Show their services' timeline").click()
    expect(page.locator("#view-journeys")).to_be_visible()
    expect(page.locator("#timeline .bar.service")).to_have_text("Repair")
    expect(page.locator("#journey-value")).to_have_value(customer_id)
    console.assert_clean()

    page.click("#nav-profiles")
    page.fill("#profile-id", other.json()["customer_id"])
    page.click("#profile-form button")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Betty")
    page.fill("#profile-id", "0000000000000000")
    page.click("#profile-form button")
    expect(page.locator("#error")).to_be_visible()
    message = http.get(f"{CS}/profiles/0000000000000000", headers=tenant).json()["message"]
    expect(page.locator("#error")).to_have_text(message)  # the API's own message
    assert all("404" in problem for problem in console.problems), console.problems
    assert console.violations() == []


def _call_from_page(page: Page, base: str, authorization: str) -> Any:
    return page.evaluate("""async ([base, authorization]) => {
        try {
            const form = new FormData();
            form.append("language", "french");
            const headers = {gms_user: "browser-user", Authorization: authorization};
            const created = await fetch(`${base}/genesys/1/service/request-interaction`,
                                        {method: "POST", headers, body: form});
            const body = await created.json();
            if (!created.ok) return {status: created.status, message: body.message};
            const read = await fetch(`${base}/genesys/1/service/${body.id}/storage`, {headers});
            return {status: created.status, id: body.id, stored: await read.json()};
        } catch (error) {
            return {failed: `${error.name}: ${error.message}`};
        }
    }""", [base, authorization])


def test_a_page_of_an_allowed_origin_calls_the_api_with_gms_user(browser: Browser, server: GmsdProcess,
                                                                  origins: tuple[OtherOrigin, OtherOrigin],
                                                                  http: httpx.Client) -> None:
    watched = watched_page(browser)
    try:
        watched.page.goto(origins[0].origin + "/")
        answer = _call_from_page(watched.page, server.base, BASIC)
        assert answer["status"] == 200, answer
        assert answer["stored"] == {"language": "french"}
        assert http.get(f"{GMS}/{answer['id']}/storage").json() == {"language": "french"}
        # Errors reach the page too: its wrong password gets a 401 it can read.
        refused = _call_from_page(watched.page, server.base, "Basic " + base64.b64encode(b"x:y").decode())
        assert refused["status"] == 401 and refused["message"], refused
        assert all("401" in problem for problem in watched.problems), watched.problems
    finally:
        watched.context.close()


def test_a_page_of_another_origin_is_refused_by_the_browser(browser: Browser, server: GmsdProcess,
                                                             origins: tuple[OtherOrigin, OtherOrigin]) -> None:
    watched = watched_page(browser)
    try:
        watched.page.goto(origins[1].origin + "/")
        answer = _call_from_page(watched.page, server.base, BASIC)
        assert answer == {"failed": "TypeError: Failed to fetch"}
        assert any("CORS policy" in problem for problem in watched.problems), watched.problems
    finally:
        watched.context.close()


def _ago(minutes: float) -> str:
    instant = datetime.now(UTC) - timedelta(minutes=minutes)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def test_screenshots_of_the_main_pages(browser: Browser, server: GmsdProcess, http: httpx.Client,
                                       tmp_path: Path) -> None:
    """The README's pictures: a realistic journey (times in the past), a service with a file and
    a customer's profile found by e-mail.
    `GMSD_SCREENSHOTS=docs python -m pytest tests/console -k screenshots` writes them into docs/."""
    target = Path(os.environ.get("GMSD_SCREENSHOTS") or tmp_path)
    customer = "C-1001"
    order = http.post(f"{CS}/services/start", json={"service_type": "Order", "customer_id": customer,
                                                    "timestamp": _ago(14), "Cart": {"items": 3}}).json()["service_id"]
    items = f"{CS}/services/{order}"
    browsing = http.post(f"{items}/states/start", json={"state_type": "Browsing", "timestamp": _ago(14)}).json()
    added = http.post(f"{items}/tasks/start", json={"task_type": "AddToCart", "state_id": browsing["state_id"],
                                                    "timestamp": _ago(12), "sku": "A-42"}).json()
    http.post(f"{items}/tasks/{added['task_id']}/end", json={"timestamp": _ago(10)})
    checkout = http.post(f"{items}/states/transition", json={"timestamp": _ago(9),
                         "from": {"state_id": browsing["state_id"]}, "to": {"state_type": "Checkout"}}).json()
    http.post(f"{items}/tasks/start", json={"task_type": "Payment", "state_id": checkout["state_id"],
                                            "timestamp": _ago(6), "Amount": {"value": 59.9, "currency": "EUR"}})
    callback = http.post(f"{CS}/services/start", json={"service_type": "Callback", "customer_id": customer,
                                                       "timestamp": _ago(8)}).json()["service_id"]
    waiting = http.post(f"{CS}/services/{callback}/states/start", json={"state_type": "Queued",
                                                                         "timestamp": _ago(8)}).json()
    http.post(f"{CS}/services/{callback}/states/{waiting['state_id']}/end", json={"timestamp": _ago(3)})
    http.post(f"{CS}/services/{callback}/end", json={"timestamp": _ago(3), "disposition": "answered"})

    watched = watched_page(browser, http_credentials=CREDENTIALS, viewport={"width": 1200, "height": 900})
    try:
        page = open_console(watched, server, "journeys")
        page.fill("#journey-value", customer)
        page.click("#journey-form button")
        expect(page.locator("#timeline .bar")).to_have_count(7)
        page.locator("#timeline .bar.task", has_text="Payment").click()
        expect(page.locator("#details-data")).to_contain_text("EUR")
        page.screenshot(path=str(target / "console-journeys.png"), full_page=True)

        page.goto(f"{server.base}/console/#services")
        created = http.post(f"{GMS}/request-interaction", data={"language": "french", "first_name": "Ana"},
                            files={"photo": ("ana.png", PNG, "image/png")}).json()
        page.fill("#service-id", created["id"])
        page.click("#open-form button")
        expect(page.locator("#keys tbody tr[data-key=photo]")).to_be_visible()
        page.screenshot(path=str(target / "console-services.png"), full_page=True)

        # The same customer's profile, found by their e-mail address.
        email = {"name": "idEmail", "attributes": ["EmailAddress"]}
        assert http.post(f"{CS}/metadata/identification-keys", json=email).status_code in (201, 409)
        address = http.post(f"{CS}/metadata/profiles/extensions", json={
            "name": "Address", "type": "multi-valued", "unique": ["kind"],
            "attributes": [{"name": "kind", "type": "string"}, {"name": "city", "type": "string"},
                           {"name": "street", "type": "string"}]})
        assert address.status_code in (201, 409)
        http.post(f"{CS}/profiles", json={
            "FirstName": "Ana", "LastName": "Lima", "EmailAddress": ["ana.lima@example.com", "ana@example.org"],
            "PhoneNumber": "+33298143456", "Title": "Ms",
            "Address": [{"kind": "home", "city": "Brest", "street": "12 rue de Siam"},
                        {"kind": "work", "city": "Rennes", "street": "1 place de la Gare"}]}).raise_for_status()
        page.goto(f"{server.base}/console/#profiles")
        expect(page.locator("#identify-key option", has_text="idEmail")).to_be_attached()
        page.select_option("#identify-key", "idEmail")
        page.fill('.identify-value[data-attribute="EmailAddress"]', "ana@example.org")
        page.click("#identify-submit")
        expect(page.locator("#profiles article.profile")).to_have_count(1)
        page.screenshot(path=str(target / "console-profiles.png"), full_page=True)
        watched.assert_clean()
    finally:
        watched.context.close()
    for name in ("console-journeys.png", "console-services.png", "console-profiles.png"):
        assert (target / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
