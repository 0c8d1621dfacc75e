"""The Cal.com app (API v2): bookings, slots, no-shows, guests, webhooks, event types."""

from __future__ import annotations

from calflow.apps.cal_com.actions.add_guests import AddGuests
from calflow.apps.cal_com.actions.book_meeting import BookMeeting
from calflow.apps.cal_com.actions.cancel_booking import CancelBooking
from calflow.apps.cal_com.actions.confirm_booking import ConfirmBooking, DeclineBooking
from calflow.apps.cal_com.actions.get_all_bookings import GetAllBookings
from calflow.apps.cal_com.actions.get_booking import GetBooking
from calflow.apps.cal_com.actions.get_slots import GetSlots
from calflow.apps.cal_com.actions.mark_absent import MarkAbsent
from calflow.apps.cal_com.actions.reschedule_booking import RescheduleBooking
from calflow.apps.cal_com.actions.webhooks import RegisterWebhook, UnregisterWebhook
from calflow.apps.cal_com.client import DEFAULT_BASE_URL
from calflow.apps.cal_com.fetchers import Bookings, EventTypes, Slots, UserEventTypes, Webhooks
from calflow.flowapp import App, AuthMode, CredentialField
from calflow.server.signatures import WEBHOOK_SIGNATURE_FIELD, check_webhook_settings

APP = App(
    key="cal_com",
    name="Cal.com",
    description="Cal.com scheduling (API v2; cal.com or self-hosted).",
    rate_limit=(120, 60.0),  # per API key; OAuth clients get 500
    concurrency=8,
    credential_fields=(
        CredentialField(
            "base_url",
            "API base URL",
            default=DEFAULT_BASE_URL,
            kind="url",
            description="https://api.cal.com, or your self-hosted Cal.com API.",
        ),
        CredentialField("api_key", "API key", secret=True, placeholder="cal_live_…"),
        CredentialField("access_token", "OAuth access token", secret=True),
        CredentialField("refresh_token", "OAuth refresh token", secret=True),
        CredentialField("oauth_client_id", "OAuth client id"),
        CredentialField("oauth_client_secret", "OAuth client secret", secret=True),
        CredentialField("webhook_id", "Webhook id", description="Set by RegisterWebhook."),
        CredentialField(
            "webhook_secret",
            "Webhook secret",
            secret=True,
            description="Set by RegisterWebhook; verifies deliveries.",
        ),
        WEBHOOK_SIGNATURE_FIELD,
    ),
    checks=(check_webhook_settings,),
    auth_modes=(
        AuthMode("api_key", "API key", ("api_key",)),
        AuthMode("oauth", "OAuth access token", ("access_token",)),
    ),
    actions=(
        BookMeeting,
        RescheduleBooking,
        CancelBooking,
        GetBooking,
        GetAllBookings,
        GetSlots,
        MarkAbsent,
        AddGuests,
        ConfirmBooking,
        DeclineBooking,
        RegisterWebhook,
        UnregisterWebhook,
    ),
    fetchers=(EventTypes, UserEventTypes, Slots, Bookings, Webhooks),
)

__all__ = ["APP"]
