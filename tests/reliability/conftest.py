"""The reliability suite shares the target suite's harness."""

from tests.target.conftest import config_for, run_target  # noqa: F401 - fixtures
