"""The running twin: world, listeners on real ports, the control plane, and the clock ticker."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from sepm_twin.api.agent import HostAgent
from sepm_twin.api.sepm import build_sepm_app
from sepm_twin.api.views import topology_view
from sepm_twin.app import build_control_app
from sepm_twin.listeners import PortListener, trivial_app, with_server_name
from sepm_twin.scenario import Scenario, load_scenario
from sepm_twin.servers import PORTS, TLS_PORTS, ManagementServer
from sepm_twin.world import World

MIN_TICK_S = 0.2


class Twin:
    """A SEPM twin running in the current event loop."""

    def __init__(self, world: World, host: str, port: int) -> None:
        self.world = world
        self.host = host
        self._requested_port = port
        self._workdir = tempfile.TemporaryDirectory(prefix="sepm-twin-")
        self._listeners: dict[tuple[str, str], PortListener] = {}
        self._control: PortListener | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._site_apps = {name: build_sepm_app(world, site) for name, site in world.sites.items()}
        self.agent = HostAgent(world, self._reconcile)

    @classmethod
    async def start(
        cls,
        scenario: Scenario | dict[str, Any] | str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Twin:
        world = World(load_scenario(scenario))
        twin = cls(world, host, port)
        try:
            await twin._start()
        except BaseException:
            await twin.stop()
            raise
        return twin

    async def _start(self) -> None:
        workdir = Path(self._workdir.name)
        for site in self.world.sites.values():
            for server in site.servers:
                for port in PORTS:
                    app = self._site_apps[site.name] if port == "8446" else trivial_app
                    listener = PortListener(
                        app=with_server_name(app, server.name),
                        host="127.0.0.1",
                        workdir=workdir,
                        label=f"{server.name}-{port}",
                    )
                    self._listeners[(server.name, port)] = listener
                await self._reconcile(server, set())
        app = build_control_app(
            world=self.world,
            agent=self.agent,
            site_apps=self._site_apps,
            control_url=lambda: self.base_url,
        )
        self._control = PortListener(
            app=app, host=self.host, port=self._requested_port, workdir=workdir, label="control"
        )
        await self._control.start(None)
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _reconcile(self, server: ManagementServer, restart: set[str]) -> None:
        """Open the ports the server's running services serve, closing those restarted first."""
        listeners = {port: self._listeners[(server.name, port)] for port in PORTS}
        await asyncio.gather(
            *(
                listener.stop()
                for port, listener in listeners.items()
                if listener.running and (port in restart or not server.port_open(port))
            )
        )
        await asyncio.gather(
            *(
                listener.start(server.served[port] if port in TLS_PORTS else None)
                for port, listener in listeners.items()
                if server.port_open(port) and not listener.running
            )
        )
        for port, listener in listeners.items():
            server.ports[port] = listener.port

    async def _tick_forever(self) -> None:
        interval = MIN_TICK_S
        while True:
            await asyncio.sleep(interval)
            self.world.sync()
            # A big fleet's tick costs tens of milliseconds; keep it under ~20% of the loop.
            interval = max(MIN_TICK_S, 5 * self.world.last_sync_seconds)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        listeners = [*self._listeners.values(), *([self._control] if self._control else [])]
        await asyncio.gather(*(listener.stop() for listener in listeners))
        self._workdir.cleanup()

    @property
    def port(self) -> int:
        assert self._control is not None, "the twin is not started"
        return self._control.port

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def topology(self) -> dict[str, Any]:
        return topology_view(self.world, self.base_url)

    async def __aenter__(self) -> Twin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
