"""Auth and /me: thin handlers over accounts.services."""

from __future__ import annotations

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from backend.clock import utcnow
from backend.domain.accounts import services
from backend.domain.accounts.access import Principal
from backend.domain.accounts.schemas import CabinetOut, LoginIn, MeOut, RefreshIn, TokenOut, UserOut
from backend.web.deps import Services


def _out(pair: services.TokenPair) -> TokenOut:
    return TokenOut(pair.access_token, pair.refresh_token, pair.expires_in)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/login", operation_id="login", status_code=200, exclude_from_auth=True)
    async def login(self, data: LoginIn, db: AsyncSession, svc: Services) -> TokenOut:
        """Exchange login and password for an access and a refresh token."""
        pair = await services.login(
            db, svc.tokens, svc.settings, data.login, data.password, data.device_name, utcnow()
        )
        return _out(pair)

    @post("/refresh", operation_id="refresh", status_code=200)
    async def refresh(self, data: RefreshIn, db: AsyncSession, svc: Services) -> TokenOut:
        """Rotate the refresh token; a reused one revokes the whole login."""
        return _out(
            await services.refresh(db, svc.tokens, svc.settings, data.refresh_token, utcnow())
        )

    @post("/logout", operation_id="logout", status_code=204)
    async def logout(self, principal: Principal, db: AsyncSession) -> None:
        """Revoke this login's refresh tokens."""
        await services.logout(db, principal.session_id, utcnow())


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get("/", operation_id="me")
    async def me(self, principal: Principal) -> MeOut:
        """The user and every cabinet they may open: own, as assistant, as acting."""
        u = principal.user
        return MeOut(
            user=UserOut(u.id, u.login, u.full_name),
            cabinets=[
                CabinetOut(c.position_id, c.title, c.organization, c.role, list(c.rights))
                for c in principal.cabinets
            ],
        )
