# C types for the compiled build of smtplens.classifier.engine (see smtplens/_accel/__init__.py): an augmenting
# .pxd. engine.py stays plain Python; here its per-reply helpers become C functions. Behaviour is the .py's.

cimport cython

cdef object _new_verdict
cdef Py_ssize_t _MEMO_SIZE

cdef str _match_text(object lines, str raw)  # lines: any sequence a caller's Reply holds
@cython.locals(name=str, at=Py_ssize_t, dot=Py_ssize_t)
cdef object _provider_by_host(object tab, str host)
