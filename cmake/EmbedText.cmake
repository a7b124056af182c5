# cmake -DIN=FILE -DOUT=FILE.cc -DNAME=kSymbol -DNAMESPACE=ns -P EmbedText.cmake
# Writes FILE's text into FILE.cc as `const char NAME[]` in NAMESPACE, so a page ships inside the
# binary (server/status_page.h). The text must not contain the raw string's delimiter.
file(READ "${IN}" content)
string(FIND "${content}" ")bfembed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the delimiter )bfembed\"")
endif()
file(WRITE "${OUT}.tmp"
     "// Generated from ${IN} by cmake/EmbedText.cmake; do not edit.\n"
     "namespace ${NAMESPACE} {\n"
     "extern const char ${NAME}[];\n"
     "const char ${NAME}[] = R\"bfembed(${content})bfembed\";\n"
     "}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUT}.tmp" "${OUT}")
