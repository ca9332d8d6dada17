"""The diagnostic agent: LangGraph state, nodes and graph builder.

Import from the submodules (``assistant.agent.graph``, ``assistant.agent.extraction``); this
package file stays empty so that ``assistant.safety`` can use the extraction helpers without
an import cycle.
"""
