import socket, time
A=('127.0.0.1',39999)
def idle():
    s=socket.create_connection(A); t=time.time(); s.settimeout(25)
    try: d=s.recv(100)
    except Exception as e: d=repr(e)
    print("idle:", round(time.time()-t,1), d[:80])
def slow():
    s=socket.create_connection(A); t=time.time(); s.settimeout(1.0)
    req=b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a"*100
    for i,b in enumerate(req):
        try:
            s.send(bytes([b]))
        except Exception as e:
            print("slow send failed", round(time.time()-t,1), e); return
        try:
            d=s.recv(100)
            print("slow: got", round(time.time()-t,1), d[:80]); return
        except socket.timeout: pass
    print("slow: never cut")
def big():
    s=socket.create_connection(A); s.settimeout(10)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: "+b"a"*40000+b"\r\n\r\n")
    except Exception as e: print("big send", e)
    try: print("big:", s.recv(200))
    except Exception as e: print("big recv", e)
def biguri():
    s=socket.create_connection(A); s.settimeout(10)
    try:
        s.sendall(b"GET /metrics?"+b"a"*40000+b" HTTP/1.1\r\nHost: x\r\n\r\n")
    except Exception as e: print("biguri send", e)
    try: print("biguri:", s.recv(200))
    except Exception as e: print("biguri recv", e)
def post():
    s=socket.create_connection(A); s.settimeout(10)
    s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab")
    print("post:", s.recv(300))
    s=socket.create_connection(A); s.settimeout(10)
    s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    print("404:", s.recv(300))
    s=socket.create_connection(A); s.settimeout(10)
    s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"+b"a"*100000)
    print("post big:", s.recv(300))
import threading
ts=[threading.Thread(target=f) for f in (idle,slow,big,biguri,post)]
[t.start() for t in ts]; [t.join() for t in ts]
