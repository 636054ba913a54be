import pytest

from core.env import ImproperSetting, env_bool, env_database, env_int, env_list, env_str


def test_booleans():
    assert env_bool("X", environ={"X": "yes"}) is True
    assert env_bool("X", environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ImproperSetting, match="X='maybe' is not a boolean"):
        env_bool("X", environ={"X": "maybe"})


def test_integers_and_bounds():
    assert env_int("N", 5, environ={"N": " 7 "}) == 7
    with pytest.raises(ImproperSetting, match="not a whole number"):
        env_int("N", 5, environ={"N": "7.5"})
    with pytest.raises(ImproperSetting, match="below the minimum 1"):
        env_int("N", 5, minimum=1, environ={"N": "0"})


def test_lists_and_required_strings():
    assert env_list("H", ["a"], environ={"H": "x.org, y.org"}) == ["x.org", "y.org"]
    with pytest.raises(ImproperSetting, match="empty item"):
        env_list("H", [], environ={"H": "x.org,,y.org"})
    with pytest.raises(ImproperSetting, match="S must be set"):
        env_str("S", environ={})


def test_database_urls():
    cfg = env_database("DATABASE_URL", "", environ={"DATABASE_URL": "postgres://u:p@db.example:5433/chacra"})
    assert (cfg["ENGINE"], cfg["HOST"], cfg["PORT"], cfg["NAME"]) == (
        "django.contrib.gis.db.backends.postgis", "db.example", 5433, "chacra")
    socket = env_database("DATABASE_URL", "postgres://chacra@%2Ftmp%2Fsock/chacra", environ={})
    assert socket["HOST"] == "/tmp/sock"
    with pytest.raises(ImproperSetting, match="needs PostGIS"):
        env_database("DATABASE_URL", "", environ={"DATABASE_URL": "sqlite:///x.db"})
    with pytest.raises(ImproperSetting, match="names no database"):
        env_database("DATABASE_URL", "", environ={"DATABASE_URL": "postgres://u@host"})


def test_settings_refuse_a_bad_value_at_start_up(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "perhaps"}
    proc = subprocess.run([sys.executable, "-m", "chacra.cli", "check"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "DEBUG='perhaps' is not a boolean" in proc.stderr
