/* Ceiling of the planned exact fused-adder kernel (issue 15, docs/performance.md, "per-MAC bound"): the
 * term loop alone, 4 uops per 16 MACs (vmulps a*b, vscalefps by 2^(kb-emax), vcvttps2dq, vpaddd), on a
 * 4-row x 3-vector register tile; no alignment exponents, steps or rounding. Thread CPU time.
 *   gcc -O3 -funroll-all-loops -o /tmp/fused_terms benchmarks/fused_adder_terms.c && /tmp/fused_terms */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
__attribute__((target("avx512f,avx512dq"),noinline)) static void run(const float *a, const float *b, long K, int32_t *out){
  __m512i S[4][3]; __m512 ey[4][3];
  for(int r=0;r<4;r++)for(int v=0;v<3;v++){S[r][v]=_mm512_setzero_si512(); ey[r][v]=_mm512_set1_ps(-3.0f-r-v);}
  for(long k=0;k<K;k++){
    __m512 b0=_mm512_loadu_ps(b+(k%256)*48),b1=_mm512_loadu_ps(b+(k%256)*48+16),b2=_mm512_loadu_ps(b+(k%256)*48+32);
    __m512 bb[3]={b0,b1,b2};
    for(int r=0;r<4;r++){ __m512 av=_mm512_set1_ps(a[(k%256)*4+r]);
      for(int v=0;v<3;v++) S[r][v]=_mm512_add_epi32(S[r][v],_mm512_cvttps_epi32(_mm512_scalef_ps(_mm512_mul_ps(av,bb[v]),ey[r][v])));}
  }
  for(int r=0;r<4;r++)for(int v=0;v<3;v++)_mm512_storeu_si512(out+(r*3+v)*16,S[r][v]);
}
int main(){ float *a=malloc(4*256*4),*b=malloc(48*256*4); int32_t out[192];
 for(int i=0;i<1024;i++) a[i]=1.0f+i%7;
 for(int i=0;i<48*256;i++) b[i]=1.0f+i%5;
 long K=20000000; struct timespec t0,t1; double best=1e9;
 for(int rep=0;rep<5;rep++){clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t0); run(a,b,K,out); clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t1);
 double s=(t1.tv_sec-t0.tv_sec)+1e-9*(t1.tv_nsec-t0.tv_nsec); if(s<best)best=s;}
 double macs=(double)K*4*48; printf("%.1f GMAC/s (%d)\n", macs/best/1e9, out[5]); }
