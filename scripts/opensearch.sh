# OpenSearch for scripts/es.sh (ENGINE=opensearch): sourced by es.sh, it replaces the functions that differ.
#
# There is no OpenSearch distribution archive on Maven Central, so the home is assembled from the artifacts that
# are there: the server `org.opensearch:opensearch` and its dependencies (resolved by Maven from a generated pom)
# become lib/, and each of the modules escli needs becomes modules/NAME/ with its jar, its own dependencies
# (those not already in lib/) and a plugin-descriptor.properties and plugin-security.policy written here (the
# jars on Maven Central carry neither). The node runs as `java -cp 'lib/*' org.opensearch.bootstrap.OpenSearch`:
# the server's own main class, with the bootstrap checks as in a distribution; 2.x on Java 17 (with the security
# manager), 3.x on Java 21+ (Temurin 25 here; 3.x replaced the security manager with a Java agent, which is not on
# Maven Central: its bootstrap classes are on the class path, no agent is loaded).
#
# OpenSearch 3.9.0 is the 3.x tested here: the newest whose server, transport-netty4-client, lang-painless,
# analysis-common, opensearch-plugin-classloader and opensearch-agent-bootstrap all resolve at one version (3.7.0
# has no lang-painless or transport-netty4-client on Maven Central; nothing newer than 3.9.0 is there).
# Security is off because the minimal server has no security plugin. Start/stop/idempotence/run directories are
# es.sh's, so `make es-down` stops an OpenSearch node like any other.
#
#   ENGINE=opensearch [OPENSEARCH_VERSION=2.19.6|3.9.0] [ES_PORT=9200] [ES_HEAP=1g] [NODES=1|3] scripts/es.sh up

OPENSEARCH_VERSION=${OPENSEARCH_VERSION:-2.19.6}
ES_VERSION=$OPENSEARCH_VERSION
ENGINE_LABEL="OpenSearch $OPENSEARCH_VERSION"
DIST_DIR="$CACHE_DIR/dist/opensearch-$OPENSEARCH_VERSION"
[ "$SECURE" = 1 ] && die "SECURE=1/TLS=1 is not available with ENGINE=opensearch (the minimal server has no security plugin)"

OS_MAJOR=${OPENSEARCH_VERSION%%.*}
# module directory name -> Maven artifact (group org.opensearch.plugin), plugin class, extended plugins.
# The classes were renamed in 3.0 (Netty4Plugin -> Netty4ModulePlugin, ...): the first one the jar holds is used.
OS_MODULES=(
  "transport-netty4 transport-netty4-client org.opensearch.transport.Netty4ModulePlugin|org.opensearch.transport.Netty4Plugin -"
  "lang-painless lang-painless org.opensearch.painless.PainlessModulePlugin|org.opensearch.painless.PainlessPlugin -"
  "analysis-common analysis-common org.opensearch.analysis.common.CommonAnalysisModulePlugin|org.opensearch.analysis.common.CommonAnalysisPlugin lang-painless"
)

java_home() {
  # OpenSearch 2.19 runs on Java 11-21 (the machine's Java 17 is the one it is tested with here); 3.x needs 21+.
  if [ -n "${ES_JAVA_HOME:-}" ]; then echo "$ES_JAVA_HOME"; return; fi
  if [ "$OS_MAJOR" -ge 3 ]; then
    pick_java "Java 21 or newer" temurin-25-jdk-amd64 temurin-21-jdk-amd64 java-25-openjdk-amd64 java-21-openjdk-amd64
  else
    pick_java "Java 17" java-17-openjdk-amd64 temurin-17-jdk-amd64 temurin-21-jdk-amd64
  fi
}

os_plugin_class() { # os_plugin_class JAR CLASS|CLASS...: the first of the classes that the jar holds
  local jar=$1 class
  local IFS='|'
  for class in $2; do
    if unzip -l "$jar" "${class//.//}.class" >/dev/null 2>&1; then echo "$class"; return; fi
  done
  die "none of $2 is in ${jar##*/}"
}

os_pom() { # os_pom GROUP:ARTIFACT...: a pom whose runtime dependencies are the given artifacts
  echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
  echo '<groupId>escli</groupId><artifactId>opensearch-home</artifactId><version>1</version><packaging>pom</packaging>'
  echo '<dependencies>'
  local a
  for a in "$@"; do
    echo "<dependency><groupId>${a%%:*}</groupId><artifactId>${a#*:}</artifactId><version>$OPENSEARCH_VERSION</version></dependency>"
  done
  echo '</dependencies></project>'
}

os_copy_deps() { # os_copy_deps WORKDIR OUTDIR GROUP:ARTIFACT...: the artifacts and their runtime dependencies
  local work=$1 out=$2; shift 2
  mkdir -p "$work" "$out"
  os_pom "$@" >"$work/pom.xml"
  (cd "$work" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$out" >&2) || die "Maven could not resolve $* $OPENSEARCH_VERSION"
}

os_module_files() { # os_module_files DIR NAME CLASS EXTENDS: the descriptor and policy the jars do not carry
  local dir=$1 name=$2 class=$3 extends=$4
  {
    echo "description=$name module of OpenSearch $OPENSEARCH_VERSION (assembled by escli's scripts/opensearch.sh)"
    echo "version=$OPENSEARCH_VERSION"
    echo "name=$name"
    echo "classname=$class"
    echo "java.version=11"
    echo "opensearch.version=$OPENSEARCH_VERSION"
    [ "$extends" != - ] && echo "extended.plugins=$extends"
  } >"$dir/plugin-descriptor.properties"
  # The permissions each module asks the security manager for, beyond what the server's policy grants.
  case "$name" in
    transport-netty4) cat >"$dir/plugin-security.policy" <<'EOF'
grant {
  // sockets: listen, accept, connect
  permission java.net.SocketPermission "*", "accept,connect";
  // the listen backlog is read from the kernel's setting
  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
  // event-loop threads get their own context class loader
  permission java.lang.RuntimePermission "*", "setContextClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";
};
EOF
    ;;
    lang-painless) cat >"$dir/plugin-security.policy" <<'EOF'
grant {
  // scripts are compiled into classes loaded by a class loader of their own
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
    ;;
  esac
}

install_analysis_plugin() { :; } # analysis-common is a real module here

fetch() {
  [ -f "$DIST_DIR/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn is needed to fetch OpenSearch"
  mkdir -p "$CACHE_DIR/dist"
  local tmp; tmp=$(mktemp -d "$CACHE_DIR/dist/.opensearch.XXXXXX")
  log "assembling OpenSearch $OPENSEARCH_VERSION from Maven artifacts in $DIST_DIR"
  # log4j-core, spatial4j and jts-core are optional in the server's pom but the server needs them at run time,
  # and the class loader of plugins that extend others (analysis-common extends lang-painless) is its own jar.
  os_copy_deps "$tmp/pom-lib" "$tmp/home/lib" org.opensearch:opensearch
  local extra="$tmp/pom-extra"
  mkdir -p "$extra"
  cat >"$extra/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>escli</groupId><artifactId>opensearch-optional</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$(os_dep_version log4j-core)</version></dependency>
<dependency><groupId>org.locationtech.spatial4j</groupId><artifactId>spatial4j</artifactId><version>$(os_dep_version spatial4j)</version></dependency>
<dependency><groupId>org.locationtech.jts</groupId><artifactId>jts-core</artifactId><version>$(os_dep_version jts-core)</version></dependency>
<dependency><groupId>org.opensearch</groupId><artifactId>opensearch-plugin-classloader</artifactId><version>$OPENSEARCH_VERSION</version></dependency>
$(os_agent_dependency)
</dependencies></project>
EOF
  (cd "$extra" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DexcludeTransitive=true \
      -DoutputDirectory="$tmp/home/lib" >&2) || die "Maven could not resolve the server's optional dependencies"
  local spec name artifact class extends jar
  for spec in "${OS_MODULES[@]}"; do
    read -r name artifact class extends <<<"$spec"
    local mod="$tmp/home/modules/$name"
    os_copy_deps "$tmp/pom-$name" "$mod" "org.opensearch.plugin:$artifact"
    # What the server already has stays in lib/ only: the same class twice is a jar-hell error at start-up.
    for jar in "$mod"/*.jar; do
      [ -e "$tmp/home/lib/${jar##*/}" ] && rm -f "$jar"
    done
    os_module_files "$mod" "$name" "$(os_plugin_class "$mod/$artifact-$OPENSEARCH_VERSION.jar" "$class")" "$extends"
  done
  mkdir -p "$tmp/home/plugins" "$tmp/home/config"
  os_write_config "$tmp/home/config"
  rm -rf "$tmp"/pom-* "${DIST_DIR:?}"
  mv "$tmp/home" "$DIST_DIR"
  rmdir "$tmp"
  touch "$DIST_DIR/.complete"
  log "assembled OpenSearch $OPENSEARCH_VERSION: $(ls "$DIST_DIR/lib" | wc -l) jars in lib/, modules: $(ls "$DIST_DIR/modules" | tr '\n' ' ')"
}

os_agent_dependency() {
  # 3.x replaced the security manager with a Java agent; the server installs its policy through the agent's
  # bootstrap classes (AgentPolicy), which must be on the class path even with no agent loaded.
  [ "$OS_MAJOR" -ge 3 ] || return 0
  echo "<dependency><groupId>org.opensearch</groupId><artifactId>opensearch-agent-bootstrap</artifactId><version>$OPENSEARCH_VERSION</version></dependency>"
}

os_dep_version() { # the version of a dependency as the server's own pom declares it
  local pom="${MAVEN_REPO:-$HOME/.m2/repository}/org/opensearch/opensearch/$OPENSEARCH_VERSION/opensearch-$OPENSEARCH_VERSION.pom"
  python3 - "$pom" "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
for dep in ET.parse(sys.argv[1]).getroot().find("m:dependencies", ns):
    if dep.findtext("m:artifactId", namespaces=ns) == sys.argv[2]:
        print(dep.findtext("m:version", namespaces=ns))
        break
else:
    sys.exit(f"{sys.argv[2]} is not in {sys.argv[1]}")
EOF
}

os_write_config() { # the home's config/: jvm.options and log4j2.properties (opensearch.yml is per node)
  local c=$1
  # Java 23 removed the COMPAT locale data that 2.x reads dates with; 3.x is built for CLDR.
  local locale=COMPAT
  [ "$OS_MAJOR" -ge 3 ] && locale=CLDR
  cat >"$c/jvm.options" <<EOF
# Read by scripts/opensearch.sh (the distribution's launcher is not used); the heap comes from ES_HEAP.
-XX:+UseG1GC
-XX:-OmitStackTraceInFastThrow
-Dfile.encoding=UTF-8
-Djava.locale.providers=SPI,$locale
-Djna.nosys=true
-Dio.netty.noUnsafe=true
-Dio.netty.noKeySetOptimization=true
-Dio.netty.recycler.maxCapacityPerThread=0
-Dlog4j.shutdownHookEnabled=false
-Dlog4j2.disable.jmx=true
-Dlog4j2.formatMsgNoLookups=true
-Dopensearch.networkaddress.cache.ttl=60
-Dopensearch.networkaddress.cache.negative.ttl=10
EOF
  cat >"$c/log4j2.properties" <<'EOF'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.rolling.type = RollingFile
appender.rolling.name = rolling
appender.rolling.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}.log
appender.rolling.filePattern = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}-%i.log.gz
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 64MB
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.rolling.ref = rolling
EOF
}

write_node_config() { # write_node_config INDEX
  local i=$1 dir="$RUN_DIR/node-$i"
  mkdir -p "$dir/data" "$dir/logs" "$dir/tmp"
  rm -rf "$dir/config"
  cp -r "$DIST_DIR/config" "$dir/config"
  node_yml "$i" "$dir" cluster.initial_cluster_manager_nodes >"$dir/config/opensearch.yml"
}

start_node() { # start_node INDEX: the server's main class in the background; it writes its own pid file
  local i=$1
  local dir="$RUN_DIR/node-$i"
  rm -f "$dir/pid"
  local opts
  opts=$(grep -v '^\s*\(#\|$\)' "$DIST_DIR/config/jvm.options" | tr '\n' ' ')
  # setsid, closed stdin and no inherited descriptors (a caller's pipe held open by the node would make
  # `es.sh up | tail` wait forever): the node outlives this script and its terminal. -d makes it close its
  # console output once started, -p writes the pid file es.sh's stop and status read.
  as_es_user "cd '$dir' && for fd in \$(ls /proc/\$\$/fd); do [ \$fd -gt 2 ] && eval \"exec \$fd>&-\"; done; \
    setsid '$(java_home)/bin/java' -Xms$ES_HEAP -Xmx$ES_HEAP $opts \
    -XX:ErrorFile='$dir/logs/hs_err_pid%p.log' -Djava.io.tmpdir='$dir/tmp' \
    -Dopensearch.path.home='$DIST_DIR' -Dopensearch.path.conf='$dir/config' \
    -Dopensearch.distribution.type=tar \
    -cp '$DIST_DIR/lib/*' org.opensearch.bootstrap.OpenSearch -d -p '$dir/pid' \
    >'$dir/logs/startup.out' 2>&1 </dev/null &"
  local t=0
  while [ ! -s "$dir/pid" ] && [ $t -lt 120 ]; do
    sleep 0.5; t=$((t + 1))
    if ! pgrep -f -- "-Dopensearch.path.conf=$dir/config" >/dev/null; then
      log "node-$i exited during start-up; last lines of its output:"
      tail -n 40 "$dir/logs/startup.out" >&2 2>/dev/null || true
      return 1
    fi
  done
}

check_reachable() {
  if ! su "$ES_USER" -s /bin/bash -c "test -r '$DIST_DIR/lib/opensearch-$OPENSEARCH_VERSION.jar'"; then
    die "user $ES_USER cannot reach $DIST_DIR; set ESCLI_ES_CACHE to a directory it can traverse (e.g. /var/tmp/escli-es)"
  fi
}

settings_line() { echo "engine=opensearch version=$OPENSEARCH_VERSION nodes=$NODES heap=$ES_HEAP"; }
