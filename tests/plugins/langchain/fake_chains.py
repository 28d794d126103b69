"""The LangChain pieces the tracing tests run: a fake chat model is the narrow seam (no LLM here)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import tool

USAGE = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}


def chat_chain(*answers: str) -> Runnable[Any, str]:
    """prompt | a fake chat model that reports token usage | parser."""
    messages = iter([AIMessage(content=answer, usage_metadata=USAGE) for answer in answers])
    return (
        ChatPromptTemplate.from_template("Tell me about {topic}")
        | GenericFakeChatModel(messages=messages)
        | StrOutputParser()
    )


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
