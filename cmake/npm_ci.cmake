# `cmake -DWEB_DIR=… -DNPM=… -P npm_ci.cmake`: runs `npm ci` in WEB_DIR unless node_modules is already
# installed from the current package-lock.json. Several build trees share WEB_DIR, so the check and
# the install happen under a lock file.
file(LOCK "${WEB_DIR}/.npm-ci.lock" GUARD PROCESS TIMEOUT 600)
set(installed "${WEB_DIR}/node_modules/.package-lock.json")
if(NOT EXISTS "${installed}" OR NOT "${installed}" IS_NEWER_THAN "${WEB_DIR}/package-lock.json")
  execute_process(COMMAND "${NPM}" ci --no-audit --no-fund WORKING_DIRECTORY "${WEB_DIR}" RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "npm ci failed in ${WEB_DIR} (${result})")
  endif()
endif()
file(TOUCH "${installed}")
