# C types for the compiled build of smtplens.classifier.matcher (see smtplens/_accel/__init__.py): an augmenting
# .pxd. matcher.py stays plain Python; here Matcher becomes an extension type whose scan loop keeps positions in C
# integers. Behaviour is the .py's.

cimport cython

cdef object _ASCII_WORD, _SURROGATE, _SURROGATE_STAND_IN

@cython.locals(lower=str)
cpdef str normalise(str text)

cdef class Matcher:
    cdef readonly list _patterns  # read by tests/test_classify_accel.py
    cdef list _heads
    cdef object _automaton
    cdef public Py_ssize_t size

    @cython.locals(hits=list, found=list, index=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t, at=Py_ssize_t,
                   word_start=bint, plain=bint, entries=tuple, number=Py_ssize_t, second=str, more=tuple,
                   heads=list)
    cpdef tuple scan(self, str text)

@cython.locals(found=Py_ssize_t, part=str)
cdef bint _pieces_follow(str text, tuple pieces, Py_ssize_t pos) except -1
