"""Float32 Adam against float64 PyTorch (the exact-reduction issue's case).

The lecture's 2-2-1 tanh/sigmoid network without bias, MSE, full batch of the
160 Gaussian training rows, Adam lr 0.05, 100 steps, from the initial weights
of each seed (bench/lecture/export): max |w - w_float64| for our trainer built
from two commits and for PyTorch in float32.

Usage: adam_float64.py BEFORE_COORDINATOR AFTER_COORDINATOR EXPORT [WORKDIR]
"""
import json, os, struct, subprocess, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

before_bin, after_bin, export_bin = sys.argv[1:4]
os.chdir(sys.argv[4] if len(sys.argv) > 4 else ".")
def load(p):
    b=open(p,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); d=b[8+n:]
    out={}
    for k,v in h.items():
        if k=='__metadata__': continue
        s,e=v['data_offsets']; out[k]=(v['shape'], struct.unpack('<%df'%((e-s)//4), d[s:e]))
    return out
worst = {}
for seed in range(1, 11):
    ex=f"ex{seed}"
    subprocess.run([export_bin,"--seed",str(seed),"--epochs","100","--hidden","2","--bias=false","--out",ex],check=True,capture_output=True)
    X,y = stio.read_xy(ex+"/train.csv")
    init=load(ex+"/init.safetensors")
    res={}
    for name, coord in [("before", before_bin), ("after", after_bin)]:
        out=f"{name}{seed}"
        subprocess.run([coord,"--single-process","--dataset","gaussian","--hidden","2","--activation","tanh","--output","sigmoid","--loss","mse","--init","xavier","--lr","0.05","--batch","0","--epochs","100","--optimizer","adam","--bias=false","--seed",str(seed),"--log-level","warn","--out",out],check=True,capture_output=True)
        res[name]=load(out+"/model.safetensors")
    for dt in (torch.float64, torch.float32):
        Xt=torch.tensor(X,dtype=dt); yt=torch.tensor(y,dtype=dt).reshape(-1,1)
        W1=torch.tensor(init["layers.0.weight"][1],dtype=dt).reshape(init["layers.0.weight"][0]).requires_grad_()
        W2=torch.tensor(init["layers.1.weight"][1],dtype=dt).reshape(init["layers.1.weight"][0]).requires_grad_()
        opt=torch.optim.Adam([W1,W2],lr=0.05)
        for _ in range(100):
            opt.zero_grad()
            out=torch.sigmoid(torch.tanh(Xt@W1.T)@W2.T)
            loss=((out-yt)**2).sum()/len(X)
            loss.backward(); opt.step()
        res["torch"+str(dt).split('.')[-1]]={"layers.0.weight":(None,W1.detach().flatten().tolist()),"layers.1.weight":(None,W2.detach().flatten().tolist())}
    ref=res["torchfloat64"]
    for name in ("before","after","torchfloat32"):
        m=max(abs(a-b) for k in ref for a,b in zip(res[name][k][1],ref[k][1]))
        worst[name]=max(worst.get(name,0),m)
        print(seed,name,"%.3g"%m)
print("worst over seeds:", {k:"%.3g"%v for k,v in worst.items()})
