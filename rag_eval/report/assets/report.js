function sortTable(th){const table=th.closest('table');const col=+th.dataset.col;const body=table.tBodies[0];
 const asc=th.dataset.dir!=='asc';table.querySelectorAll('th').forEach(h=>delete h.dataset.dir);th.dataset.dir=asc?'asc':'desc';
 const key=tr=>{const td=tr.children[col];const v=td?(td.dataset.value??td.textContent):'';const n=parseFloat(v);
  return v!==''&&!isNaN(n)?n:(v===''?null:v)};
 const rows=[...body.rows];rows.sort((a,b)=>{const x=key(a),y=key(b);if(x===null)return 1;if(y===null)return -1;
  const c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));return asc?c:-c});
 rows.forEach(r=>body.appendChild(r));}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
const QUERIES=JSON.parse(document.getElementById('query-data').textContent);
function escapeHtml(s){return String(s??'').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function docList(docs){return '<ol>'+docs.map(d=>'<li class="'+(d.grade!=null?'gold':'')+'">'+(d.grade!=null?'&#10003; ':'')
 +'<code>'+escapeHtml(d.id)+'</code> '+escapeHtml(d.text.slice(0,300))+'</li>').join('')+'</ol>'}
function showQuery(set,qid){const box=document.getElementById('detail-'+set);const s=QUERIES[set];const q=s&&s.queries[qid];
 if(!q){box.innerHTML='<i>query '+escapeHtml(qid)+': texts not kept in this page (only the largest changes are)</i>';return}
 box.innerHTML='<div class="query-title"><b>'+escapeHtml(qid)+'</b> ('+escapeHtml(s.metric)+' '+q.s1.toFixed(4)+' &rarr; '
 +q.s2.toFixed(4)+(q.miss?', retriever miss':'')+')</div><p class="query-text">'+escapeHtml(q.query)+'</p>'
 +'<div><b>Judged documents</b>'+'<ul class="judged">'+q.judged.map(d=>'<li><code>'+escapeHtml(d.id)+'</code> (grade '+d.grade+') '
 +escapeHtml(d.text.slice(0,300))+'</li>').join('')+'</ul></div>'
 +'<div class="cols"><div class="top1"><b>Stage 1 top '+q.stage1.length+'</b> ('+escapeHtml(s.stage1)+')'+docList(q.stage1)
 +'</div><div class="top2"><b>Stage 2 top '+q.stage2.length+'</b> ('+escapeHtml(s.stage2)+')'+docList(q.stage2)+'</div></div>';
 box.scrollIntoView({block:'nearest'});}
document.querySelectorAll('tr.query-row').forEach(tr=>tr.addEventListener('click',()=>showQuery(tr.dataset.set,tr.dataset.qid)));
document.querySelectorAll('div[id^="deltas-"]').forEach(el=>{if(el.on)el.on('plotly_click',
 ev=>{const p=ev.points&&ev.points[0];if(p)showQuery(el.id.slice(7),p.customdata)})});
