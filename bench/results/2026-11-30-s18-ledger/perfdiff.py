# Per-symbol CPU-us per request of two perf profiles of the gateway (session 18):
#   python3 perfdiff.py A.data A_RPS A_SECONDS B.data B_RPS B_SECONDS
import re,subprocess,sys
def ev(f):
    out=subprocess.run(['perf','report','-i',f,'--stdio','-g','none','--sort','comm'],capture_output=True,text=True).stdout
    return float(re.search(r'Event count \(approx.\): (\d+)',out).group(1))
def load(f,rps,dur):
    tot=ev(f)
    out=subprocess.run(['perf','report','-i',f,'--no-children','--sort','comm,symbol','--stdio','-g','none'],capture_output=True,text=True).stdout
    d={}
    for line in out.splitlines():
        mm=re.match(r'\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$',line)
        if mm:
            p,comm,k,sym=mm.groups()
            sym=re.split(r'\s{2,}',sym.strip())[0]
            d[(comm,sym)]=d.get((comm,sym),0)+float(p)/100*tot/1000/(rps*dur)
    return d
a=load(sys.argv[1],float(sys.argv[2]),float(sys.argv[3])); b=load(sys.argv[4],float(sys.argv[5]),float(sys.argv[6]))
for name,d in (('A',a),('B',b)):
    print(name,'aigis %.2f'%sum(v for (c,s),v in d.items() if c=='aigis'),'other %.2f'%sum(v for (c,s),v in d.items() if c!='aigis'))
keys=set(a)|set(b)
rows=sorted(((b.get(k,0)-a.get(k,0)),k) for k in keys if k[0]=='aigis')
print('top increases on request threads (us/req): delta A B')
for dl,k in rows[::-1][:35]: print('%6.3f %6.3f %6.3f  %s'%(dl,a.get(k,0),b.get(k,0),k[1][:100]))
print('decreases'); 
for dl,k in rows[:8]: print('%6.3f %6.3f %6.3f  %s'%(dl,a.get(k,0),b.get(k,0),k[1][:100]))
