"""Sign-in providers as the operator configures them, and what a provider's identity does
to accounts: linked by issuer and subject, never by email alone."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.accounts import services
from dockyard.accounts.providers import Identity, load_providers
from dockyard.errors import ConfigurationError, Conflict, SignInRefused
from dockyard.settings import Settings, load_settings
from tests.support.app import TEST_SECRET_KEY, serving
from tests.support.github_oauth import github_stand_in
from tests.support.network import free_port

ISSUER = "https://login.example.org/realms/lab"


def settings_with(tmp_path: Path, toml: str | None = None, **values: object) -> Settings:
    if toml is not None:
        (tmp_path / "auth.toml").write_text(toml)
        values["auth_providers_file"] = tmp_path / "auth.toml"
    return Settings(database_url=f"sqlite:///{tmp_path}/d.db", **values)


def test_one_provider_from_the_environment_and_more_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "orcid-secret").write_text("from-a-file\n")
    settings = load_settings(
        {
            "DOCKYARD_DATA_DIR": str(tmp_path),
            "DOCKYARD_OIDC_ISSUER": ISSUER,
            "DOCKYARD_OIDC_CLIENT_ID": "dockyard",
            "DOCKYARD_OIDC_CLIENT_SECRET": "s3cret",
            "DOCKYARD_OIDC_NAME": "Lab login",
            "DOCKYARD_SELF_SIGNUP": "approval",
        }
    )
    assert settings.self_signup == "approval"
    (tmp_path / "auth.toml").write_text(
        f"""
[providers.github]
kind = "github"
client_id = "gh"
client_secret = "gh-secret"

[providers.orcid]
kind = "orcid"
client_id = "APP-1"
client_secret_file = "{tmp_path / "orcid-secret"}"

[providers.ghes]
kind = "github"
display_name = "Institute GitHub"
github_url = "https://github.example.org"
client_id = "x"
client_secret = "y"
"""
    )
    providers = load_providers(
        settings.model_copy(update={"auth_providers_file": tmp_path / "auth.toml"})
    )
    assert list(providers) == ["default", "github", "orcid", "ghes"]
    default = providers["default"]
    assert (default.display_name, default.issuer, default.kind) == ("Lab login", ISSUER, "oidc")
    assert default.scopes == ("openid", "email", "profile")
    assert "s3cret" not in repr(default)
    github = providers["github"]
    assert (github.kind, github.issuer, github.api_url) == (
        "github",
        "https://github.com",
        "https://api.github.com",
    )
    orcid = providers["orcid"]
    assert (orcid.issuer, orcid.scopes, orcid.display_name) == (
        "https://orcid.org",
        ("openid",),
        "ORCID",
    )
    assert orcid.client_secret.get_secret_value() == "from-a-file"
    assert providers["ghes"].api_url == "https://github.example.org/api/v3"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[providers.Lab]\nissuer='https://x.org'\nclient_id='a'\nclient_secret='b'\n",
            "a key is 1-40 lowercase",
        ),
        ("[providers.lab]\nclient_id='a'\nclient_secret='b'\n", "needs issuer"),
        (
            "[providers.lab]\nissuer='https://x.org'\nclient_id='a'\n",
            "exactly one of client_secret and client_secret_file",
        ),
        (
            "[providers.lab]\nissuer='http://login.example.org'\nclient_id='a'\nclient_secret='b'\n",
            "must be an https:// address",
        ),
        (
            "[providers.lab]\nissuer='https://x.org'\nclient_id='a'\nclient_secret='b'\ncolour='red'\n",
            "colour: Extra inputs are not permitted",
        ),
        (
            "[providers.lab]\nissuer='https://x.org'\nclient_id='a'\nclient_secret_file='/nonexistent'\n",
            "cannot read client_secret_file /nonexistent",
        ),
        ("[lab]\nissuer='https://x.org'\n", "give each provider as a [providers.KEY] table"),
        ("[providers.lab\n", "is not valid TOML"),
    ],
)
def test_a_bad_providers_file_says_where_and_what_to_change(
    tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=r"auth\.toml") as raised:
        load_providers(settings_with(tmp_path, toml))
    assert message in raised.value.message
    assert "'b'" not in raised.value.message


def test_the_environment_provider_needs_all_three_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="go together"):
        load_providers(settings_with(tmp_path, oidc_issuer=ISSUER, oidc_client_id="x"))
    with pytest.raises(ConfigurationError, match="DOCKYARD_SELF_SIGNUP"):
        load_settings({"DOCKYARD_DATA_DIR": str(tmp_path), "DOCKYARD_SELF_SIGNUP": "maybe"})


def identity(
    subject: str = "s-1", email: str | None = "grace@example.org", hint: str = "grace"
) -> Identity:
    return Identity(ISSUER, subject, hint, "Grace Hopper", email)


def test_an_identity_signs_in_its_own_user_and_never_joins_one_by_email(session: Session) -> None:
    first = services.sign_in_with_identity(
        session, provider="lab", identity=identity(), self_signup="true"
    )
    assert first.created and first.user is not None and first.user.username == "grace"
    again = services.sign_in_with_identity(
        session, provider="lab", identity=identity(), self_signup="false"
    )
    assert again.user is first.user and not again.created

    # Someone else at the provider with the same email: refused, not joined.
    with pytest.raises(Conflict, match="never joined by email alone"):
        services.sign_in_with_identity(
            session, provider="lab", identity=identity("s-2"), self_signup="true"
        )
    # The same subject at another issuer is another person.
    other = Identity("https://other.example.org", "s-1", "grace", None, "g2@example.org")
    second = services.sign_in_with_identity(
        session, provider="x", identity=other, self_signup="true"
    )
    assert second.user is not None and second.user.username == "grace-2"


def test_unknown_people_are_refused_unless_self_signup_allows(session: Session) -> None:
    with pytest.raises(SignInRefused, match="ask one for an account"):
        services.sign_in_with_identity(
            session, provider="lab", identity=identity(), self_signup="false"
        )
    with pytest.raises(services.NeedsDetails, match="no verified email"):
        services.sign_in_with_identity(
            session, provider="lab", identity=identity(email=None), self_signup="true"
        )
    made = services.sign_in_with_identity(
        session,
        provider="lab",
        identity=identity(email=None),
        self_signup="true",
        username="ghopper",
        email="grace@lab.example.org",
    )
    assert made.user is not None and (made.user.username, made.user.email) == (
        "ghopper",
        "grace@lab.example.org",
    )


def test_a_linked_identity_cannot_be_linked_to_a_second_account(session: Session) -> None:
    ada = services.create_user(
        session, username="ada", email="ada@example.org", password="correct horse"
    )
    bob = services.create_user(
        session, username="bob", email="bob@example.org", password="correct horse"
    )
    linked = services.sign_in_with_identity(
        session, provider="lab", identity=identity(), self_signup="false", link_user=ada
    )
    assert linked.linked and linked.user is ada
    with pytest.raises(Conflict, match="linked to another dockyard account"):
        services.sign_in_with_identity(
            session, provider="lab", identity=identity(), self_signup="false", link_user=bob
        )
    [only] = services.list_identities(session, ada)
    services.unlink_identity(session, ada, only.id)  # ada still has her password
    assert services.list_identities(session, ada) == []


def test_the_last_way_in_is_not_removed(session: Session) -> None:
    made = services.sign_in_with_identity(
        session, provider="lab", identity=identity(), self_signup="true"
    )
    assert made.user is not None
    [only] = services.list_identities(session, made.user)
    with pytest.raises(Conflict, match="only way to sign in"):
        services.unlink_identity(session, made.user, only.id)


def test_a_state_is_used_once_by_the_browser_that_started_it(session: Session) -> None:
    begun = services.start_sign_in(session, provider="lab", browser="browser-a", next_path="/x")
    session.commit()
    with pytest.raises(SignInRefused, match="started in another browser"):
        services.take_sign_in(session, provider="lab", state=begun.state, browser="browser-b")
    session.rollback()  # as the request's unit of work does: the attempt is still there
    with pytest.raises(SignInRefused, match="matches no sign-in"):
        services.take_sign_in(session, provider="github", state=begun.state, browser="browser-a")
    taken = services.take_sign_in(session, provider="lab", state=begun.state, browser="browser-a")
    assert (taken.nonce, taken.code_verifier, taken.next_path) == (
        begun.nonce,
        begun.code_verifier,
        "/x",
    )
    with pytest.raises(SignInRefused, match="used already"):
        services.take_sign_in(session, provider="lab", state=begun.state, browser="browser-a")


def test_an_unreachable_provider_is_an_error_on_the_sign_in_page(
    database_url: str, tmp_path: Path
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        background_refresh=False,
        oidc_issuer=issuer,
        oidc_client_id="dockyard",
        oidc_client_secret=SecretStr("a-secret-not-to-show"),
        oidc_name="Lab login",
    )
    with serving(settings) as url:
        page = httpx.get(f"{url}/signin")
        assert 'href="/signin/oidc/default?next=/"' in page.text
        answer = httpx.get(f"{url}/signin/oidc/default")
        assert answer.status_code == 502
        assert "Lab login could not be reached: try again in a moment" in answer.text
        assert 'class="error" role="alert"' in answer.text
        assert "a-secret-not-to-show" not in answer.text
        unknown = httpx.get(f"{url}/signin/oidc/nope")
        assert unknown.status_code == 404 and "no sign-in provider &#39;nope&#39;" in unknown.text


def test_github_signs_a_person_in_by_its_numeric_id_with_the_primary_verified_email(
    database_url: str, tmp_path: Path, engine: Engine
) -> None:
    with github_stand_in("Iv1.dockyard", "github-secret-not-to-show") as github:
        (tmp_path / "auth.toml").write_text(
            f'[providers.ghes]\nkind = "github"\ndisplay_name = "Institute GitHub"\n'
            f'github_url = "{github.url}"\nclient_id = "Iv1.dockyard"\n'
            'client_secret = "github-secret-not-to-show"\n'
        )
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path,
            secret_key=SecretStr(TEST_SECRET_KEY),
            background_refresh=False,
            auth_providers_file=tmp_path / "auth.toml",
            self_signup="true",
        )
        with serving(settings) as url, httpx.Client(base_url=url) as browser:
            browser.get("/signin")  # the CSRF cookie the sign-in is bound to
            to_github = browser.get("/signin/oidc/ghes", params={"next": "/my/tools"})
            assert to_github.status_code == 303
            sent = dict(parse_qsl(urlsplit(to_github.headers["location"]).query))
            assert (
                sent["code_challenge_method"] == "S256" and sent["scope"] == "read:user user:email"
            )
            assert (
                "code_verifier" not in sent and "github-secret" not in to_github.headers["location"]
            )

            back = httpx.get(to_github.headers["location"])  # GitHub answers at once
            callback = back.headers["location"]
            done = browser.get(callback)
            assert done.status_code == 303, done.text
            account = browser.get("/account")
            assert "octocat" in account.text and "octocat@example.org" in account.text

            again = browser.get(callback)  # the same answer twice
            assert again.status_code == 401 and "it was used already" in again.text

            # A code replayed into a new sign-in: GitHub refuses it (200, as GitHub does).
            fresh = browser.get("/signin/oidc/ghes").headers["location"]
            state = dict(parse_qsl(urlsplit(fresh).query))["state"]
            code = dict(parse_qsl(urlsplit(callback).query))["code"]
            replayed = browser.get(
                "/signin/oidc/ghes/callback", params={"code": code, "state": state}
            )
            assert replayed.status_code == 401
            assert "Institute GitHub refused the sign-in: bad_verification_code" in replayed.text
            assert "github-secret-not-to-show" not in replayed.text
    with db.make_sessionmaker(engine)() as session:
        octocat = services.get_user(session, "octocat")
        [linked] = services.list_identities(session, octocat)
        assert (octocat.email, linked.issuer, linked.subject) == (
            "octocat@example.org",
            github.url,
            "583231",
        )
