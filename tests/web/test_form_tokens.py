"""Every form of the new pages needs the page's form token: a post from elsewhere (which
a SameSite=Lax cookie would already stop) is refused before anything is read or done."""

from __future__ import annotations

import pytest

from tests.web.conftest import Browser

POSTS = ["/incidents/1/acknowledge", "/incidents/1/comments", "/maintenance",
         "/maintenance/1/delete", "/team/members", "/team/members/1/role",
         "/team/members/1/remove", "/account/password", "/account/tokens",
         "/account/tokens/1/revoke", "/account/two-factor", "/account/two-factor/confirm",
         "/account/two-factor/off"]


@pytest.mark.parametrize("path", POSTS)
async def test_a_post_without_the_form_token_is_refused(owner_browser: Browser,
                                                        path: str) -> None:
    for token in ({}, {"form_token": "0" * 32}):
        answer = await owner_browser.http.post(path, data={**token, "role": "viewer"})
        assert answer.status_code == 403, path
        assert "form is out of date" in answer.text
