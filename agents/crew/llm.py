"""One crewai LLM per agent, whose every request goes through the run's gate.

crewai's native OpenAI provider builds its own openai clients; we build them
again with an `httpx` client carrying our transport (see transport.py), and
with the SDK's own retries off so that retries, budget and breaker are ours
alone. If a crewai upgrade stops using those clients we refuse to run rather
than call the endpoint unbounded.
"""

from __future__ import annotations

from typing import Any

from agents.crew.transport import Gate, http_clients
from core.settings import Settings


class UnboundedClient(RuntimeError):
    """crewai would not use our bounded client; calling the LLM would escape the budget and the breaker."""


def bounded_llm(*, settings: Settings, gate: Gate, agent: str, max_tokens: int) -> Any:
    from crewai import LLM
    from openai import AsyncOpenAI, OpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    llm: Any = LLM(
        model=f"openai/{settings.llm_model}",
        base_url=settings.openai_base_url,
        api_key=key,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        max_tokens=max_tokens,
    )
    sync_client, async_client = http_clients(gate, agent)
    params = {**llm._get_client_params(), "max_retries": 0}
    llm._client = OpenAI(**params, http_client=sync_client)
    llm._async_client = AsyncOpenAI(**params, http_client=async_client)
    if llm._get_sync_client()._client is not sync_client or llm._get_async_client()._client is not async_client:
        raise UnboundedClient("crewai's OpenAI provider no longer uses the client we give it")
    return llm
