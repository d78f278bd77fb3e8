"""`GMSD_REDIS_URL` forms: decoding, clear errors, and the redis-py client each form builds."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from gmsd.backend.connect import DEADLINE_PER_TIMEOUT, connect
from gmsd.backend.urls import RedisTarget, parse_redis_url, redacted
from gmsd.config import RedisOptions
from gmsd.errors import ConfigError
from tests.support.paths import ROOT


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://h:6380", "unix:///run/redis.sock"])
def test_single_server_forms_go_to_redis_py_unchanged(url: str) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.url) == ("server", url)


def test_cluster_seed_nodes() -> None:
    target = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,redis-2")
    assert target == RedisTarget(
        "cluster", target.url, (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("redis-2", 6379))
    )


def test_cluster_tls_credentials_ipv6_and_db_zero() -> None:
    target = parse_redis_url("rediss+cluster://app:p%40ss%2Cw@[::1]:7000,[fd00::2]/0")
    assert target.tls
    assert (target.username, target.password) == ("app", "p@ss,w")
    assert target.nodes == (("::1", 7000), ("fd00::2", 6379))


def test_password_only_userinfo() -> None:
    target = parse_redis_url("redis+cluster://:secret@h:1")
    assert (target.username, target.password) == (None, "secret")


def test_sentinel_master_and_db() -> None:
    target = parse_redis_url("redis+sentinel://s1:26379,s2:26380,s3/mymaster/2")
    assert target.kind == "sentinel"
    assert target.nodes == (("s1", 26379), ("s2", 26380), ("s3", 26379))
    assert (target.master, target.db, target.tls) == ("mymaster", 2, False)
    assert parse_redis_url("REDISS+SENTINEL://s1/m/").db == 0
    assert parse_redis_url("rediss+sentinel://s1/m").tls


@pytest.mark.parametrize("url,problem", [
    ("localhost:6379", "expected scheme://"),
    ("redis://h:port/0", "Port could not be cast"),
    ("http://h:1", "unknown scheme 'http'"),
    ("redis+shard://h:1", "unknown scheme"),
    ("unix+cluster://h:1", "unknown scheme"),
    ("redis+cluster://", "empty host"),
    ("redis+cluster://a:1,,b:2", "empty host"),
    ("redis+cluster://a:port", "port must be a number"),
    ("redis+cluster://a:70000", "out of range"),
    ("redis+cluster://a:0", "out of range"),
    ("redis+cluster://::1:7000", "IPv6 as [address]:port"),
    ("redis+cluster://[::1:7000", "Invalid IPv6"),
    ("redis+cluster://[::1]7000", "malformed IPv6"),
    ("redis+cluster://a:1/3", "only database 0"),
    ("redis+cluster://a:1?timeout=3", "unsupported query parameter(s) timeout"),
    ("redis+cluster://a:1?sentinel_password=x", "unsupported query parameter(s) sentinel_password"),
    ("redis+sentinel://s/m?sentinel_pasword=x", "accepted: sentinel_password, sentinel_username"),
    ("redis+sentinel://s/m?sentinel_password=a&sentinel_password=b", "repeated"),
    ("redis+cluster://a:1#frag", "fragment"),
    ("redis+sentinel://s:26379", "name the master"),
    ("redis+sentinel://s:26379/", "name the master"),
    ("redis+sentinel://s:26379/m/x", "database must be a number"),
    ("redis+sentinel://s:26379/m/0/extra", "/<master name>[/<db>]"),
])
def test_malformed_urls_are_refused_with_the_problem_named(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_url(url)
    assert problem in str(caught.value)


def test_sentinels_may_have_their_own_credentials() -> None:
    target = parse_redis_url("redis+sentinel://:data%2Fpw@s1,s2/m?sentinel_password=s%26pw&sentinel_username=watch")
    assert (target.password, target.sentinel_username, target.sentinel_password) == ("data/pw", "watch", "s&pw")
    assert parse_redis_url("redis+sentinel://s/m").sentinel_password is None


def test_passwords_never_appear_in_errors_or_reprs() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_url("redis+cluster://user:hunter2@a:port")
    assert "hunter2" not in str(caught.value)
    assert "user:***@a:port" in str(caught.value)
    assert "hunter2" not in repr(parse_redis_url("redis+sentinel://:hunter2@s/m?sentinel_password=hunter2"))
    with pytest.raises(ConfigError) as caught:
        parse_redis_url("redis+sentinel://s/m?sentinel_password=hunter2&x=1")
    assert "hunter2" not in str(caught.value)
    assert redacted("redis://h:1/0") == "redis://h:1/0"
    assert redacted("redis://u:pa/ss@word@h:1/0") == "redis://u:***@h:1/0"
    assert redacted("rediss://user@h:1") == "rediss://user@h:1"  # a user name alone is no secret


def test_serve_refuses_a_malformed_url_before_starting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gmsd.cli", "serve", "--redis-url", "redis+sentinel://s:26379"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "name the master" in result.stderr


# --- the clients the forms build (real redis-py objects; nothing connects until first use) ----

OPTIONS = RedisOptions(timeout=0.7, max_connections=5)


def test_cluster_url_builds_a_redis_py_cluster_client() -> None:
    client = connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", OPTIONS)
    assert isinstance(client, RedisCluster)
    assert sorted(client.nodes_manager.startup_nodes) == ["127.0.0.1:7000", "127.0.0.1:7001"]
    kwargs = client.get_connection_kwargs()
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.7, 0.7)
    assert kwargs["max_connections"] == 5
    assert client.retry.get_retries() == 1
    assert not client.nodes_manager._dynamic_startup_nodes  # the seeds stay the seeds
    assert client.call_deadline == pytest.approx(0.7 * DEADLINE_PER_TIMEOUT)


def test_sentinel_url_builds_a_sentinel_managed_primary_client() -> None:
    client = connect("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/1", OPTIONS)
    pool = client.connection_pool
    assert isinstance(client, redis.Redis)
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master, pool.connection_kwargs["db"]) == ("mymaster", True, 1)
    assert pool.connection_kwargs["socket_timeout"] == 0.7
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels] == [26379, 26380]
    for sentinel in pool.sentinel_manager.sentinels:
        assert sentinel.connection_pool.connection_kwargs["socket_timeout"] == 0.7
        assert sentinel.connection_pool.connection_kwargs["password"] is None
        assert sentinel.get_retry().get_retries() == 0  # not redis-py's default 3, with backoff
    assert pool.connection_kwargs["retry"].get_retries() == 1
    assert client.call_deadline == pytest.approx(0.7 * DEADLINE_PER_TIMEOUT)
    asyncio.run(client.aclose())


@pytest.mark.parametrize("component,kind", [("redis-cluster", "cluster"), ("redis-sentinel", "sentinel")])
def test_the_kubernetes_components_carry_valid_urls(component: str, kind: str) -> None:
    components = ROOT / "k8s" / "components"
    text = (components / component / "kustomization.yaml").read_text(encoding="utf-8")
    assert "name: gmsd-redis" in text  # the Secret the base's Deployment reads GMSD_REDIS_URL from
    urls = re.findall(r"^\s*url: (\S+)$", text, re.M)
    assert len(urls) == 1
    assert parse_redis_url(urls[0]).kind == kind
