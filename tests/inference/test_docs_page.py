"""``/docs``: Swagger UI served by the server itself, nothing from the internet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fourloops.inference.docs import ASSETS, swagger_ui_files
from fourloops.project import Project
from fourloops.server import build_app
from trips import prepare_project


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = prepare_project(tmp_path_factory.mktemp("docs") / "p", materialize=False)
    project = Project.load(root, env={})
    with TestClient(build_app(project)) as c:
        yield c
    project.close()


def test_the_page_loads_only_files_of_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/") for link in links), links  # no CDN, no internet
    assert f"{ASSETS}/swagger-ui-bundle.js" in links and f"{ASSETS}/swagger-ui.css" in links
    assert 'url: "/openapi.json"' in page.text
    assert "/v1/models/late/predict" in page.text  # the no-JavaScript fallback lists the routes
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200, link
        if link.startswith(ASSETS):
            assert asset.content == (swagger_ui_files() / Path(link).name).read_bytes()
    assert (
        client.get(f"{ASSETS}/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )


@pytest.mark.parametrize("name", ["index.j2", "swagger-initializer.js", "../__init__.py", "nope.js"])
def test_only_the_viewer_files_are_served(client: TestClient, name: str) -> None:
    answer = client.get(f"{ASSETS}/{name}")
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"
