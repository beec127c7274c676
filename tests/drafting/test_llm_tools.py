"""The LLM drafter with the knowledge base as tool calls, through the real ``openai``
client against the OpenAI-compatible fake server on loopback."""

import json
from datetime import date

import pytest

from mailbot.config import LlmSettings
from mailbot.drafting.llm import LlmClient
from mailbot.drafting.tools import ToolBox
from tests.support.fake_llm import FakeLlm

DOS = date(2026, 11, 4)
GOOD = {"answer": "Report J1010 x 80 units; J1030 ended 2024-03-31.",
        "cited_codes": [{"code": "J1010", "role": "recommended"}], "confidence": 0.7, "questions": []}


@pytest.fixture(scope="module")
def fake_llm():
    server = FakeLlm().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm):
    fake_llm.reset()
    return fake_llm


@pytest.fixture
def toolbox(codes_db, db):
    return ToolBox(db.read, DOS)


def client(llm, **kw) -> LlmClient:
    values = {"base_url": llm.base_url, "model": "fake-model", "timeout_seconds": 5, "max_retries": 0, **kw}
    return LlmClient(LlmSettings(**values))


def test_the_model_calls_tools_then_answers(llm, toolbox):
    llm.script(FakeLlm.tool_calls(("lookup", {"codes": ["J1030"]}), ("successors", {"code": "J1030"})),
               FakeLlm.json(GOOD))
    draft = client(llm).draft("J1030 80 mg, what now?", '{"proposed_answer": "Report J1010 x 80 units"}',
                              tools=toolbox)
    assert draft.output.answer.startswith("Report J1010")
    first, second = llm.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"lookup", "search", "check", "successors"}
    assert "proposed_answer" in first["messages"][1]["content"]
    results = [m for m in second["messages"] if m["role"] == "tool"]
    assert len(results) == 2 and "2024-03-31" in results[0]["content"]
    assert json.loads(results[1]["content"])["successors"][0]["code"] == "J1010"
    assert [c["tool"] for c in toolbox.calls] == ["lookup", "successors"]
    assert any(m.get("role") == "tool" for m in draft.prompt)   # the audit trail keeps the tool results


def test_the_tool_loop_is_bounded(llm, toolbox):
    llm.script(FakeLlm.tool_calls(("search", {"query": "methylprednisolone", "system": "hcpcs"})),
               FakeLlm.tool_calls(("search", {"query": "again"})), FakeLlm.json(GOOD))
    draft = client(llm, max_tool_rounds=2).draft("q", "{}", tools=toolbox)
    assert draft.output.answer.startswith("Report")
    assert [r["tool_choice"] for r in llm.requests] == ["auto", "auto", "none"]


def test_a_server_without_tool_support_gets_the_json_prompt(llm, toolbox):
    llm.script(FakeLlm.status(400), FakeLlm.json(GOOD))
    draft = client(llm).draft("q", "{}", tools=toolbox)
    assert draft.output.answer.startswith("Report")
    assert "tools" in llm.requests[0] and "tools" not in llm.requests[1]


def test_tools_switched_off_send_no_tools(llm, toolbox):
    llm.script(FakeLlm.json(GOOD))
    client(llm, tools=False).draft("q", "{}", tools=toolbox)
    assert "tools" not in llm.requests[0]


def test_a_bad_tool_call_gets_an_error_result_not_a_crash(toolbox):
    assert "error" in json.loads(toolbox.run("lookup", "not json"))
    assert "unknown tool" in json.loads(toolbox.run("drop_tables", "{}"))["error"]
    assert "error" in json.loads(toolbox.run("check", json.dumps({"codes": []})))
    assert "error" in json.loads(toolbox.run("lookup", json.dumps({"codes": ["J1030"], "extra": 1})))


def test_the_index_tool_is_offered_once_the_alphabetic_index_is_imported(llm, fresh_db, tmp_path):
    from mailbot.codes.importers import import_sets
    from tests.codes.test_alphabetic_index import INDEX

    before = ToolBox(fresh_db.read, DOS)
    assert "index" not in before.names
    assert "unknown tool" in json.loads(before.run("index", json.dumps({"code": "S52.521A"})))["error"]
    path = tmp_path / "icd10cm_index_2026.xml"
    path.write_text(INDEX, encoding="utf-8")
    import_sets(fresh_db, index=[path])
    toolbox = ToolBox(fresh_db.read, DOS)
    assert toolbox.names[-1] == "index"
    paths = json.loads(toolbox.run("index", json.dumps({"code": "S52.521A"})))["paths"]
    assert paths[0] in ("Index: Fracture, traumatic, radius, distal end, buckle -> S52.52-",
                        "Index: Fracture, traumatic, radius, distal end, torus -> S52.52-")
    lines = json.loads(toolbox.run("index", json.dumps({"term": "diabetes kidney"})))["lines"]
    assert lines == ["Index: Diabetes, diabetic (mellitus) (sugar), with, chronic kidney disease -> E11.22"]
    assert "error" in json.loads(toolbox.run("index", "{}"))
    assert "error" in json.loads(toolbox.run("index", json.dumps({"code": "99213"})))
    # the model is offered it through the real client
    llm.script(FakeLlm.tool_calls(("index", {"term": "fracture radius"})), FakeLlm.json(GOOD))
    client(llm).draft("q", "{}", tools=toolbox)
    assert "index" in {t["function"]["name"] for t in llm.requests[0]["tools"]}
    assert "S52.5-" in [m for m in llm.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
