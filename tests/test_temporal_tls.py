"""Temporal over TLS as Temporal Cloud and a cluster with `requireClientAuth` serve it: the desk's own
`connect` (which the worker, the API and the CLI all use) through a TLS-terminating proxy in front of the
dev server. With the client certificate, key and CA settings a complaint is filed and finished over it; a
client without a certificate, or with one from another CA, is refused. An API key reaches the client and
brings TLS with it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from ledger.repository import Ledger
from ledger.secret_files import SecretFileError
from ledger.vault import VaultKeyring
from policy.complaint import Review
from policy.models import ComplaintStatus, DefectRejection, ReviewDecision
from starter.desk import ComplaintDesk, connect
from starter.desk.settings import SettingsError, TemporalSettings
from tests.factories import DESCRIPTION, PAYLOAD_KEYS, POLICY, SUPPORT, customer, software_order
from tests.tls_proxy import Issued, TlsProxy, certificate_authority, issue, server_context, tls_proxy
from worker import build_worker

REFUSED_WITHIN = 90
"""Seconds a refused client may take to give up (the SDK retries its first call before it reports)."""


@dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued
    """A client certificate from another CA, with a name the proxy would otherwise accept."""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = certificate_authority(tmp_path / "ca", "Refund Desk test CA")
    other = certificate_authority(tmp_path / "other-ca", "Someone else's CA")
    return Pki(
        ca=ca,
        server=issue(ca, tmp_path / "server", "server", "temporal-frontend", server=True),
        client=issue(ca, tmp_path / "client", "client", "refund-desk-worker", server=False),
        stranger=issue(other, tmp_path / "stranger", "client", "refund-desk-worker", server=False),
    )


@pytest.fixture(autouse=True)
def desk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload keys the dev server's clients use; no Temporal setting inherited from the shell."""
    monkeypatch.setenv("REFUND_DESK_PAYLOAD_KEYS", PAYLOAD_KEYS.spec())
    for name in (
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CERT",
        "TEMPORAL_TLS_KEY",
        "TEMPORAL_TLS_CA",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_API_KEY",
        "TEMPORAL_API_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def upstream(dev_server: WorkflowEnvironment) -> str:
    return dev_server.client.service_client.config.target_host


@pytest.fixture
async def mtls(dev_server: WorkflowEnvironment, pki: Pki) -> AsyncIterator[TlsProxy]:
    """The dev server behind TLS that requires a client certificate signed by the test CA."""
    async with tls_proxy(upstream(dev_server), server_context(pki.server, client_ca=pki.ca)) as proxy:
        yield proxy


async def test_the_desk_files_and_finishes_a_complaint_over_mtls(
    mtls: TlsProxy, pki: Pki, ledger: Ledger, keyring: VaultKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configured through the environment as a deployment is: the certificate, its key and the CA."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", mtls.address)
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(pki.client.cert))
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(pki.client.key))
    monkeypatch.setenv("TEMPORAL_TLS_CA", str(pki.ca.cert))
    settings = TemporalSettings()
    assert settings.uses_tls()

    client = await connect(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.namespace)
    )
    assert described.namespace_info.name == "default"
    assert mtls.accepted and set(mtls.accepted) == {"refund-desk-worker"}, "every connection showed the cert"

    queue = f"tls-{uuid.uuid4().hex[:8]}"
    desk = ComplaintDesk(client=client, ledger=ledger, keyring=keyring, task_queue=queue)
    async with build_worker(client, ledger, keyring, queue):
        order = software_order()
        filed = await desk.file_defect_complaint(order, DESCRIPTION, filed_by=customer(order), policy=POLICY)
        assert filed.status is ComplaintStatus.UNDER_REVIEW
        reject = Review(
            actor=SUPPORT, decision=ReviewDecision.REJECT, reason_code=DefectRejection.NOT_A_DEFECT
        )
        await desk.review(filed.complaint_id, reject)
        final = await asyncio.wait_for(desk.outcome(filed.complaint_id), timeout=60)
    assert final.status is ComplaintStatus.REJECTED
    assert not mtls.refused


async def test_the_server_name_setting_names_the_certificate_to_expect(mtls: TlsProxy, pki: Pki) -> None:
    """TEMPORAL_TLS_SERVER_NAME=localhost: the certificate's DNS name is checked, not the dialled IP."""
    port = mtls.address.rpartition(":")[2]
    settings = TemporalSettings(
        address=f"127.0.0.1:{port}",
        tls_cert=pki.client.cert,
        tls_key=pki.client.key,
        tls_ca=pki.ca.cert,
        tls_server_name="localhost",
    )
    client = await connect(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert described.namespace_info.name == "default"

    wrong = settings.model_copy(update={"tls_server_name": "temporal.example.com"})
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(connect(wrong), timeout=REFUSED_WITHIN)


async def test_a_client_without_a_certificate_is_refused(mtls: TlsProxy, pki: Pki) -> None:
    settings = TemporalSettings(address=mtls.address, tls_ca=pki.ca.cert)
    assert settings.uses_tls(), "a CA alone means TLS"
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(connect(settings), timeout=REFUSED_WITHIN)
    assert mtls.refused, "the proxy saw a TLS handshake and refused it"
    assert not mtls.accepted


async def test_a_certificate_from_another_ca_is_refused(mtls: TlsProxy, pki: Pki) -> None:
    settings = TemporalSettings(
        address=mtls.address, tls_cert=pki.stranger.cert, tls_key=pki.stranger.key, tls_ca=pki.ca.cert
    )
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(connect(settings), timeout=REFUSED_WITHIN)
    assert mtls.refused and not mtls.accepted
    assert any("certificate" in reason.lower() for reason in mtls.refused), mtls.refused


async def test_a_plain_client_never_reaches_the_server_behind_tls(mtls: TlsProxy) -> None:
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(connect(TemporalSettings(address=mtls.address)), timeout=REFUSED_WITHIN)
    assert not mtls.accepted


async def test_an_api_key_reaches_the_client_and_brings_tls(
    dev_server: WorkflowEnvironment, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporal Cloud's API keys: sent as a bearer token over TLS (server-side TLS only: no client
    certificate). The key from TEMPORAL_API_KEY_FILE, as a mounted secret gives it."""
    key = "tmprl-test-" + uuid.uuid4().hex
    (tmp_path / "api-key").write_text(key + "\n")
    async with tls_proxy(upstream(dev_server), server_context(pki.server, client_ca=None)) as proxy:
        monkeypatch.setenv("TEMPORAL_ADDRESS", proxy.address)
        monkeypatch.setenv("TEMPORAL_API_KEY_FILE", str(tmp_path / "api-key"))
        monkeypatch.setenv("TEMPORAL_TLS_CA", str(pki.ca.cert))
        settings = TemporalSettings()
        options = settings.connection_options()
        assert options["api_key"] == key
        assert isinstance(options["tls"], TLSConfig) and options["tls"].client_cert is None
        assert key not in repr(settings) and key not in str(settings)

        client = await connect(settings)
        assert client.api_key == key, "the key reached Client.connect"
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
        assert described.namespace_info.name == "default"
        assert proxy.accepted == [None] * len(proxy.accepted) and proxy.accepted, "TLS, no client cert"


def test_an_api_key_alone_means_tls_with_the_systems_roots() -> None:
    options = TemporalSettings(
        address="ns.acct.tmprl.cloud:7233", api_key=SecretStr("k")
    ).connection_options()
    assert options["api_key"] == "k"
    assert options["tls"] == TLSConfig(), "TLS with no CA of its own: the system's roots"
    assert TemporalSettings(tls=True).connection_options()["tls"] == TLSConfig()
    plain = TemporalSettings().connection_options()
    assert plain == {"namespace": "default", "tls": False}, "no TLS and no key unless asked"


def test_half_an_mtls_pair_is_refused_in_a_sentence(pki: Pki) -> None:
    with pytest.raises(SettingsError) as no_key:
        TemporalSettings(tls_cert=pki.client.cert)
    assert str(no_key.value) == (
        "TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: a client certificate for mTLS needs its "
        "private key and the key its certificate; set both, or neither"
    )
    with pytest.raises(SettingsError, match=r"^TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not"):
        TemporalSettings(tls_key=pki.client.key)


def test_tls_material_with_tls_turned_off_is_refused(pki: Pki) -> None:
    with pytest.raises(SettingsError, match="TEMPORAL_TLS is false but TEMPORAL_TLS_CA is set"):
        TemporalSettings(tls=False, tls_ca=pki.ca.cert)
    with pytest.raises(SettingsError, match="TEMPORAL_TLS is false but TEMPORAL_API_KEY is set"):
        TemporalSettings(tls=False, api_key=SecretStr("k"))


def test_an_unreadable_tls_file_is_said_when_the_settings_are_read(pki: Pki, tmp_path: Path) -> None:
    absent = tmp_path / "nowhere.pem"
    with pytest.raises(SecretFileError) as raised:
        TemporalSettings(tls_cert=absent, tls_key=pki.client.key)
    assert str(raised.value) == f"TEMPORAL_TLS_CERT names {absent}, which does not exist"
    with pytest.raises(
        SettingsError, match=rf"^TEMPORAL_TLS_CA names {re.escape(str(tmp_path))}, which is a folder"
    ):
        TemporalSettings(tls_ca=tmp_path)


def test_the_private_key_stays_out_of_the_settings_repr(pki: Pki) -> None:
    settings = TemporalSettings(tls_cert=pki.client.cert, tls_key=pki.client.key, tls_ca=pki.ca.cert)
    body = pki.client.key.read_text().splitlines()[1]
    assert body not in repr(settings) and body not in str(settings)
