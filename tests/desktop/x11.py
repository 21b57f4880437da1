"""What a window manager would do, for tests under Xvfb (which has none): find a top-level window
by its title and ask it to close (WM_DELETE_WINDOW), through libX11 by ctypes; grab the screen."""

from __future__ import annotations

import ctypes
import subprocess
import sys

_CLIENT_MESSAGE = 33


class _ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _Event(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def _lib():
    x = ctypes.cdll.LoadLibrary("libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = ctypes.c_ulong
    x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                             ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                             ctypes.POINTER(ctypes.c_uint)]
    x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_Event)]
    x.XFlush.argtypes = [ctypes.c_void_p]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x.XFree.argtypes = [ctypes.c_void_p]
    return x


def _windows(x, dpy, parent: int, depth: int = 0):
    root, par = ctypes.c_ulong(), ctypes.c_ulong()
    children, n = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
    if not x.XQueryTree(dpy, parent, ctypes.byref(root), ctypes.byref(par), ctypes.byref(children), ctypes.byref(n)):
        return
    kids = [children[i] for i in range(n.value)]
    if children:
        x.XFree(children)
    for w in kids:
        yield w
        if depth < 2:
            yield from _windows(x, dpy, w, depth + 1)


def window_titles(display: str) -> list[str]:
    x = _lib()
    dpy = x.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        out = []
        for w in _windows(x, dpy, x.XDefaultRootWindow(dpy)):
            name = ctypes.c_char_p()
            if x.XFetchName(dpy, w, ctypes.byref(name)) and name.value:
                out.append(name.value.decode("utf-8", "replace"))
        return out
    finally:
        x.XCloseDisplay(dpy)


def close_window(display: str, title: str) -> int:
    """Send WM_DELETE_WINDOW to every window titled `title`; the number asked."""
    x = _lib()
    dpy = x.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        asked = 0
        for w in _windows(x, dpy, x.XDefaultRootWindow(dpy)):
            name = ctypes.c_char_p()
            if not (x.XFetchName(dpy, w, ctypes.byref(name)) and name.value == title.encode()):
                continue
            ev = _Event()
            ev.xclient.type, ev.xclient.window = _CLIENT_MESSAGE, w
            ev.xclient.message_type, ev.xclient.format = protocols, 32
            ev.xclient.data[0], ev.xclient.data[1] = delete, 0
            x.XSendEvent(dpy, w, 0, 0, ctypes.byref(ev))
            asked += 1
        x.XFlush(dpy)
        return asked
    finally:
        x.XCloseDisplay(dpy)


_GRAB = """
import sys
from PyQt6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
sys.exit(0 if app.primaryScreen().grabWindow(0).save(sys.argv[1]) else 1)
"""


def grab_screen(display: str, path: str) -> None:
    """The root window (the whole screen) as a PNG, taken by Qt in a process of its own."""
    env = {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", _GRAB, path], env=env, check=True, timeout=30)
