# cmake -DPROG=<binary> [-DEMULATOR=<cmd;args>] -DFLAG=--man -DOUT=<file> -DCHECK=<regex> -P tlscache-gen.cmake
# Writes `PROG FLAG` to OUT; fails (and leaves no OUT) when the program fails, prints nothing or
# its first line does not match CHECK (a man page of another section, a wrong program).
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND ${EMULATOR} ${PROG} ${FLAG} OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${PROG} ${FLAG} failed (${rc}): ${err}")
endif()
file(STRINGS ${OUT}.tmp lines LIMIT_COUNT 2)
string(REGEX MATCH "${CHECK}" ok "${lines}")
if(NOT ok)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${PROG} ${FLAG}: output does not start as expected (${CHECK}): ${lines}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
