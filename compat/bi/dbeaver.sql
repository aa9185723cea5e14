-- DBeaver 25.1 (pgjdbc, extended protocol): what it sends on connect and when the
-- navigator opens schema public and the test table.
-- Connect-time statements: DBeaver's own texts, as captured against PostgreSQL (see
-- shared/notes/ecosystem.md §5); literal OIDs there are replaced by {{placeholders}}.
-- The keyword list of the pg_get_keywords() query is shortened.
-- Statements marked RECONSTRUCTION are written from DBeaver's PostgreSQL plugin as we
-- know it, not captured.

-- @name session setup: extra_float_digits
SET extra_float_digits = 3;
-- @name session setup: application_name
SET application_name = 'DBeaver 25.1.5 - Main <compat>';
-- @name current schema and user
-- @expect-row current_schema=public
SELECT current_schema(),session_user;
-- @name schemas with descriptions (duplicate column names n.oid and n.*)
-- @expect-row nspname=public
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname;
-- @name pgjdbc type lookup for OID 1034 (aclitem[])
SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = 1034;
-- @name pgjdbc array-type lookup for OID 1034
SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns           join ( select s.r, (current_schemas(false))[s.r] as nspname                    from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        ) as sp     ON sp.nspoid = typnamespace  WHERE pg_type.oid = 1034  ORDER BY sp.r, pg_type.oid DESC;
-- @name SHOW search_path
-- @expect-rows 1
SHOW search_path;
-- @name this database
-- @expect-rows 1
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='{{dbname}}';
-- @name standard_conforming_strings from pg_settings
-- @expect-row name=standard_conforming_strings setting=on
SELECT * FROM pg_catalog.pg_settings where name='standard_conforming_strings';
-- @name keywords not in SQL:2003 (list shortened)
-- @expect-rows 1
SELECT string_agg(word, ',' ) from pg_catalog.pg_get_keywords() where word <> ALL ('{a,abs,absolute,action,add,all,allocate,alter,and,any,are,array,as,asc,between,bigint,binary,blob,boolean,both,by,call,cascade,case,cast,char,character,check,close,coalesce,collate,column,commit,connect,constraint,create,cross,current,current_date,current_time,current_timestamp,current_user,cursor,date,day,dec,decimal,declare,default,delete,desc,distinct,double,drop,else,end,except,exists,false,fetch,float,for,foreign,from,full,grant,group,having,in,inner,insert,int,integer,intersect,interval,into,is,join,leading,left,like,limit,natural,not,null,numeric,of,on,only,or,order,outer,primary,real,references,right,rollback,row,select,session_user,set,smallint,some,table,then,time,timestamp,to,trailing,true,union,unique,update,user,using,values,varchar,when,where,with}'::text[]);
-- @name version()
-- @expect-rows 1
SELECT version();
-- @name pg_enum probe
-- @expect-rows 0
SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1;
-- @name pg_class.reltype probe
-- @expect-rows 0
SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1;
-- @name data types with base type names
-- @expect-row typname=int4
-- @expect-row typname=jsonb
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C');
-- @name tables of schema public, with partition info
-- @expect-row relname=compat_bi_items relkind=r
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key
    FROM pg_catalog.pg_class c
    LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
    WHERE c.relnamespace={{public_oid}} AND c.relkind not in ('i','I','c');
-- @name relation sizes of schema public
-- @expect-rows >=1
select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as rel_size
     FROM pg_class c
     WHERE c.relnamespace={{public_oid}};
-- @name columns of the test table (RECONSTRUCTION)
-- @expect-row attname=id attnotnull=t
-- @expect-row attname=name attnotnull=t
-- @expect-row attname=tags
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid={{table_oid}}
ORDER BY a.attnum;
-- @name indexes of the test table
-- @expect-row relname=compat_bi_items_name_idx indisunique=f
-- @expect-row indisprimary=t indisunique=t
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans FROM pg_catalog.pg_index i
    INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
    INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
    LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
    WHERE  i.indrelid={{table_oid}} ORDER BY tabrelname, c.relname;
-- @name constraints of the test table
-- @expect-row contype=p
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
    FROM pg_catalog.pg_constraint c
    INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
    LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
    LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
    WHERE c.conrelid={{table_oid}}
    ORDER BY c.oid;
-- @name data tab: first rows of the test table (RECONSTRUCTION)
-- @expect-rows 3
SELECT * FROM public.compat_bi_items
LIMIT 200;
