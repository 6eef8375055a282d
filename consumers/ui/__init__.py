"""The live dashboard (``trainsentry ui``): runs, curves with alert markers, weight and gradient
statistics, served by the package itself (no CDN) and pushed live with server-sent events."""

from .dashboard import DEFAULT_BIND, DEFAULT_PORT, DashboardOptions, run_dashboard

__all__ = ["DEFAULT_BIND", "DEFAULT_PORT", "DashboardOptions", "run_dashboard"]
